"""Game speech corpus: archive format, script texts, line LM and matching, alignment checks, and
the speaker-held-out split reaching the training data path."""

import io
import json
import math
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from emote.model_runtime.training import game_corpus, line_lm, queen_data, speaker_split


# --- queen.1c -------------------------------------------------------------------------------
def _mp3(seconds: float, freq: float = 220.0) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * 11025)) / 11025
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 11025, format="MP3")
    return buf.getvalue()


def _write_qtbl(path: Path, entries: dict[str, bytes]) -> None:
    head = b"QTBL" + b"CEM10\0" + b"\0\0" + b"\x01" + struct.pack(">H", len(entries))
    table, blob = b"", b""
    off = len(head) + 21 * len(entries)
    for name, data in entries.items():
        table += name.encode().ljust(12, b"\0") + b"\x01" + struct.pack(">II", off + len(blob),
                                                                        len(data))
        blob += data
    path.write_bytes(head + table + blob)


def test_archive_reads_entries_and_decodes_speech_to_16k(tmp_path):
    p = tmp_path / "queen.1c"
    _write_qtbl(p, {"020006J1.SB": _mp3(1.0), "QUEEN2.JAS": b"It's open*02\r\nHang on*03"})
    arc = queen_data.QueenArchive(p)
    assert arc.speech_names() == ["020006J1"]
    assert arc.read("QUEEN2.JAS").startswith(b"It's open")
    a = arc.audio16k("020006J1")
    assert a.dtype == np.float32 and abs(len(a) / 16000 - 1.0) < 0.1


def test_archive_refuses_missing_or_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install flight-of-the-amazon-queen"):
        queen_data.QueenArchive(tmp_path / "nope.1c")
    (tmp_path / "x.1c").write_bytes(b"RIFF" + b"\0" * 30)
    with pytest.raises(ValueError, match="QTBL"):
        queen_data.QueenArchive(tmp_path / "x.1c")


def test_clip_names_give_kind_speaker_and_line():
    k = queen_data.clip_kind("0200A6P2")
    assert k == {"kind": "dialogue", "talk": "02", "line": 0xA6, "who": "person", "part": 2}
    assert queen_data.clip_kind("350009J1")["who"] == "joe"
    assert queen_data.clip_kind("JOE00071") == {"kind": "description", "line": 7, "who": "joe",
                                                "part": 1}
    assert queen_data.clip_kind("C21L_141")["kind"] == "cutscene"
    assert queen_data.clip_kind("C21L_141")["who"] == "unknown"
    assert queen_data.clip_kind("03SSSSJ1")["kind"] == "other"
    assert queen_data.clip_kind("1000SSSS")["kind"] == "other"


def test_lines_split_into_spoken_parts_at_codes():
    assert queen_data.split_parts("Could I have a look at it?*03I might be able to repair it.*02") \
        == ["Could I have a look at it?", "I might be able to repair it."]
    assert queen_data.split_parts("*FLI'll be back!*03") == ["I'll be back!"]
    assert queen_data.split_parts("*04*03") == []


def test_length_prefixed_strings_skip_a_stray_printable_byte():
    s1 = b"Could I have a look at it?*03"
    s2 = b"Thanks for telling me.*01"
    blob = b"\x00\x07$" + bytes([len(s1)]) + s1 + bytes([len(s2)]) + s2 + b"\x00\x00"
    assert queen_data._pascal_strings(blob) == [s1.decode(), s2.decode()]


def test_character_of_conversation_files():
    assert queen_data.character_of("BOB3.DOG") == "bob"
    assert queen_data.character_of("ORACLE1.DOG") == "oracle"
    assert queen_data.character_of("TALLPYG.DOG") == "tallpyg"


@pytest.mark.skipif(not queen_data.QUEEN_1C.is_file(),
                    reason="Debian package flight-of-the-amazon-queen not installed")
def test_real_game_lines_hold_the_known_texts():
    arc = queen_data.QueenArchive()
    names = arc.speech_names()
    assert len(names) > 6000
    lines = queen_data.game_lines(arc)
    by_src = defaultdict(set)
    for ln in lines:
        by_src[ln["source"]].add(ln["text"])
    assert "Excuse me Bob." in by_src["BOB1.DOG"]
    assert "I might be able to repair it." in by_src["BOB1.DOG"]
    assert "I don't see anything special" in by_src["QUEEN2.JAS"]
    src = game_corpus.QueenSource(arc)
    assert src.description_text({"line": 1, "part": 1}) == "I don't see anything special"


# --- line LM and matching ---------------------------------------------------------------------
def _read_arpa(path):
    grams = [dict(), dict(), dict()]
    order = 0
    for line in Path(path).read_text().splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1]) - 1
            continue
        f = line.split()
        if not f or line.startswith(("\\", "ngram")):
            continue
        n = order + 1
        words = tuple(f[1:1 + n])
        bo = float(f[1 + n]) if len(f) > 1 + n else 0.0
        grams[order][words] = (float(f[0]), bo)
    return grams


def _prob(grams, hist, w):
    g = tuple(hist) + (w,)
    if g in grams[len(g) - 1]:
        return 10 ** grams[len(g) - 1][g][0]
    bo = grams[len(hist) - 1].get(tuple(hist), (0, 0.0))[1] if hist else 0.0
    return 10 ** bo * _prob(grams, hist[1:], w)


def test_arpa_lm_is_normalised_for_every_history(tmp_path):
    sents = [s.split() for s in ["the blue button", "the red button", "press the red one",
                                 "then red again", "and blue"]]
    line_lm.write_arpa(sents, tmp_path / "lm.arpa", order=3)
    grams = _read_arpa(tmp_path / "lm.arpa")
    vocab = [g[0] for g in grams[0] if g[0] != "<s>"]
    for hist in [("the",), ("red",), ("<s>",), ("the", "red"), ("<s>", "the"), ("blue",)]:
        total = sum(_prob(grams, hist, w) for w in vocab)
        assert math.isclose(total, 1.0, rel_tol=1e-3), (hist, total)


def test_arpa_lm_loads_in_pocketsphinx(tmp_path):
    ps = pytest.importorskip("pocketsphinx", reason="pocketsphinx is in requirements-dev.txt")
    line_lm.write_arpa([["hang", "on"], ["excuse", "me"]], tmp_path / "lm.arpa")
    dec = ps.Decoder(samprate=16000, lm=None, loglevel="FATAL")
    dec.add_lm_file("t", str(tmp_path / "lm.arpa"))
    dec.activate_search("t")


def test_match_keeps_only_a_clearly_best_line():
    parts = [s.split() for s in ["i know you will joe", "i don't think we'd both fit under there",
                                 "but i think he pressed the blue button", "then red again",
                                 "then red", "and blue"]]
    j, info = game_corpus.match_line("i don't think we'd both fit i'm didn't".split(), parts)
    assert j == 1 and info["wer"] <= game_corpus.MAX_WER
    j, info = game_corpus.match_line("then red code".split(), parts)  # two lines fit equally
    assert j is None and "equally" in info["reason"]
    j, info = game_corpus.match_line("and glue".split(), parts)  # short line, not exact
    assert j is None and "short" in info["reason"]
    j, info = game_corpus.match_line("completely unrelated words here".split(), parts)
    assert j is None and "close enough" in info["reason"]
    j, info = game_corpus.match_line([], parts)
    assert j is None


def test_repeated_script_lines_do_not_compete_with_themselves():
    parts = [["excuse", "me"], ["excuse", "me"], ["excuse", "me", "bob"]]
    j, _ = game_corpus.match_line(["excuse", "me"], parts)
    assert j == 0


# --- alignment plausibility -----------------------------------------------------------------
def _speechy(seconds, on=(0.2, 1.0)):
    a = np.zeros(int(seconds * 16000), np.float32)
    s, e = (int(x * 16000) for x in on)
    a[s:e] = 0.3 * np.random.default_rng(0).standard_normal(e - s)
    return a


def test_plausibility_accepts_a_normal_alignment_and_names_each_fault():
    audio = _speechy(1.2)
    phones = [["SIL", 0.0, 0.2]] + [[p, 0.2 + 0.1 * i, 0.3 + 0.1 * i]
                                    for i, p in enumerate("HH EH L OW W ER L D".split())] + \
        [["SIL", 1.0, 1.2]]
    words = [["hello", 0.2, 0.6], ["world", 0.6, 1.0]]
    assert game_corpus.plausibility(phones, words, 2, audio) is None
    assert "words" in game_corpus.plausibility(phones, words[:1], 2, audio)
    slow = [["SIL", 0.0, 0.2], ["AA", 0.2, 0.5], ["B", 0.5, 1.0], ["SIL", 1.0, 1.2]]
    assert "speech rate" in game_corpus.plausibility(slow, words, 2, audio)
    long = [["SIL", 0.0, 0.2]] + [[p, 0.2 + 0.05 * i, 0.25 + 0.05 * i] for i, p in
                                  enumerate("HH EH L OW W".split())] + [["ER", 0.45, 1.1]]
    assert "lasts" in game_corpus.plausibility(long, words, 2, _speechy(1.1, (0.2, 1.1)))
    # speech aligned where the audio is silent, and loud audio left in "silence"
    shifted = [["SIL", 0.0, 0.75]] + [[p, 0.75 + 0.05 * i, 0.8 + 0.05 * i] for i, p in
                                      enumerate("HH EH L OW W ER L D".split())]
    assert "silence" in game_corpus.plausibility(shifted, words, 2, _speechy(1.2, (0.1, 0.75)))


# --- held-out speakers ----------------------------------------------------------------------
@pytest.fixture()
def heldout_list(tmp_path, monkeypatch):
    path = tmp_path / "heldout_clips.txt"
    path.write_text("# test list\nspeaker queen:bob\nqueen-350009P1 queen:man\n")
    monkeypatch.setattr(speaker_split, "HELDOUT_FILE", path)
    speaker_split.load_heldout.cache_clear()
    yield path
    speaker_split.load_heldout.cache_clear()


def test_split_comes_from_the_list_not_from_the_manifest(heldout_list):
    rec = {"id": "queen-070001P1", "source": "game", "speaker": "queen:bob", "split": "train"}
    assert speaker_split.split_of(rec) == "heldout"
    assert speaker_split.split_of({**rec, "speaker": "queen:man", "id": "x"}) == "heldout"
    assert speaker_split.split_of({**rec, "speaker": "queen:faye"}) == "train"
    assert speaker_split.split_of({**rec, "speaker": "queen:unknown"}) == "unlabelled"
    assert speaker_split.split_of({"id": "tts-1", "source": "tts", "split": "val"}) == "val"


def test_missing_list_means_no_game_speech(tmp_path, monkeypatch):
    monkeypatch.setattr(speaker_split, "HELDOUT_FILE", tmp_path / "gone.txt")
    speaker_split.load_heldout.cache_clear()
    with pytest.raises(FileNotFoundError, match="held out"):
        speaker_split.split_of({"id": "q", "source": "game", "speaker": "queen:bob"})
    speaker_split.load_heldout.cache_clear()


def _records(spk_bilabials: dict[str, int], clips_each: int = 12) -> list[dict]:
    recs = []
    for spk, nb in spk_bilabials.items():
        for c in range(clips_each):
            n = nb // clips_each + (1 if c < nb % clips_each else 0)
            phones = [["SIL", 0, 0.1]] + [["B", 0.1 + 0.1 * i, 0.2 + 0.1 * i] for i in range(n)]
            recs.append({"id": f"queen-{spk}-{c}", "source": "game", "speaker": f"queen:{spk}",
                         "phones": phones})
    return recs


def test_heldout_choice_is_deterministic_whole_speakers_and_meets_the_minimum(tmp_path):
    recs = _records({f"s{i}": 30 for i in range(14)} | {"joe": 500})
    a = speaker_split.choose_heldout(recs, 8, 200)
    b = speaker_split.choose_heldout(list(reversed(recs)), 8, 200)
    assert a == b and len(a) >= 8 and "queen:joe" not in a
    n = speaker_split.write_heldout(recs, a, tmp_path / "h.txt")
    assert n == 12 * len(a)
    speakers, clips = speaker_split.load_heldout(str(tmp_path / "h.txt"))
    assert speakers == frozenset(a)
    assert all(c.split("-")[1] in {s.split(":")[1] for s in a} for c in clips)
    with pytest.raises(ValueError, match="need 8"):
        speaker_split.choose_heldout(_records({"a": 30, "b": 30}), 8, 200)


def test_heldout_speaker_cannot_reach_a_training_split(tmp_path, heldout_list):
    """Through the real data path: manifest -> load_utterances -> cache -> train indices."""
    import soundfile as sf

    from emote.model_runtime.training.feature_cache import build_cache, load_cache
    from emote.model_runtime.training.train_default import load_utterances

    corpus = tmp_path / "c"
    (corpus / "wavs").mkdir(parents=True)
    rows = []
    for uid, spk in [("queen-a", "queen:faye"), ("queen-b", "queen:bob"),
                     ("queen-c", "queen:unknown"), ("queen-350009P1", "queen:joe")]:
        sf.write(str(corpus / "wavs" / f"{uid}.wav"), _speechy(1.0), 16000, subtype="PCM_16")
        rows.append({"id": uid, "wav": f"wavs/{uid}.wav", "source": "game", "speaker": spk,
                     "split": "train",  # a stale manifest claiming everything is training data
                     "phones": [["SIL", 0, 0.2], ["B", 0.2, 0.3], ["AA", 0.3, 0.8],
                                ["SIL", 0.8, 1.0]]})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    utts, summary = load_utterances([corpus])
    assert {u.uid: u.split for u in utts} == {"queen-a": "train", "queen-b": "val",
                                              "queen-350009P1": "val"}
    assert summary["skipped_unlabelled"] == 1 and summary["heldout_utterances"] == 2

    def teacher_fn(phones, audio, w, i, style, rng):
        T = w.shape[0]
        return np.zeros((T, 4), np.float32), np.zeros((T, 3), np.float32)

    def curve_fn(T, rng):
        return np.tile(np.eye(8, dtype=np.float32)[:1], (T, 1)), np.ones(T, np.float32)

    path = build_cache(utts, tmp_path / "cache.npz", lambda a: np.zeros((len(a) // 320 + 1, 4)),
                       teacher_fn, curve_fn, ["neutral"], variants=1, progress=None)
    cache = load_cache(path)
    train_ids = {str(cache.ids[i]) for i in cache.indices("train")}
    assert train_ids == {"queen-a"}
    assert {str(cache.ids[i]) for i in cache.indices("val")} == {"queen-b", "queen-350009P1"}


def test_game_copies_augment_training_speakers_only(tmp_path, heldout_list):
    import soundfile as sf

    from emote.model_runtime.training.train_default import load_utterances

    corpus = tmp_path / "c"
    (corpus / "wavs").mkdir(parents=True)
    rows = []
    for uid, spk in [("queen-a", "queen:faye"), ("queen-b", "queen:bob")]:
        sf.write(str(corpus / "wavs" / f"{uid}.wav"), _speechy(1.0), 16000, subtype="PCM_16")
        rows.append({"id": uid, "wav": f"wavs/{uid}.wav", "source": "game", "speaker": spk,
                     "phones": [["SIL", 0, 0.2], ["B", 0.2, 0.3], ["AA", 0.3, 0.8],
                                ["SIL", 0.8, 1.0]]})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    utts, _ = load_utterances([corpus], game_copies=2, seed=0)
    ids = sorted(u.uid for u in utts)
    assert ids == ["queen-a", "queen-a~aug0", "queen-a~aug1", "queen-b"]
    again, _ = load_utterances([corpus], game_copies=2, seed=0)
    for u, v in zip(sorted(utts, key=lambda x: x.uid), sorted(again, key=lambda x: x.uid)):
        assert np.array_equal(u.audio, v.audio)  # deterministic
    for u in utts:
        assert u.phones[-1][2] <= len(u.audio) / 16000 + 1e-3
        assert (u.split == "val") == (u.uid == "queen-b")


def test_conversation_of_a_heldout_character_is_held_out_whole(tmp_path, monkeypatch):
    recs = _records({f"s{i}": 30 for i in range(10)})
    for r in recs:
        r.update(who="person", talk=r["speaker"][-1])  # one conversation per speaker
    chosen = speaker_split.choose_heldout(recs, 8, 200)
    path = tmp_path / "h.txt"
    speaker_split.write_heldout(recs, chosen, path)
    monkeypatch.setattr(speaker_split, "HELDOUT_FILE", path)
    speaker_split.load_heldout.cache_clear()
    talk = chosen[0][-1]
    # a line of that conversation matched to another character's file stays held out
    stray = {"id": "queen-x", "source": "game", "speaker": "queen:other", "who": "person",
             "talk": talk}
    assert speaker_split.split_of(stray) == "heldout"
    assert speaker_split.split_of({**stray, "who": "joe", "speaker": "queen:joe"}) == "train"
    speaker_split.load_heldout.cache_clear()


def test_one_speaker_per_conversation():
    def rec(i, talk, spk):
        return {"id": f"q{i}", "source": "game", "who": "person", "talk": talk, "speaker": spk}

    recs = [rec(0, "55", "queen:sparky"), rec(1, "55", "queen:sparky"), rec(2, "55", "queen:faye"),
            rec(3, "12", "queen:death"), rec(4, "12", "queen:laris"),
            rec(5, "07", "queen:bob"),
            {"id": "j", "source": "game", "who": "joe", "talk": "55", "speaker": "queen:joe"}]
    out = {r["id"]: r["speaker"] for r in speaker_split.reconcile(recs)}
    assert out == {"q0": "queen:sparky", "q1": "queen:sparky", "q2": "queen:unknown",
                   "q3": "queen:unknown", "q4": "queen:unknown", "q5": "queen:bob",
                   "j": "queen:joe"}
    assert recs[2]["speaker"] == "queen:faye"  # inputs untouched
