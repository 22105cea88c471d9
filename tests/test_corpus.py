"""Speech corpus: a tiny real build, manifest format, augmentation timing, alignment, exclusions."""

import json
import shutil

import numpy as np
import pytest

from emote.model_runtime.training import align, augment, corpus, text, tts_engines

VOICES = tts_engines.available_voices()
needs_tts = pytest.mark.skipif(not VOICES, reason="no speech synthesiser installed "
                               "(scripts/install_speech_tools.sh)")


def _has_pocketsphinx():
    try:
        import pocketsphinx  # noqa: F401
        return True
    except ImportError:
        return False


@needs_tts
def test_tiny_build_writes_a_valid_manifest(tmp_path):
    by_engine = {}
    for v in VOICES:
        by_engine.setdefault(v.engine, v)
    added = corpus.build_tts(tmp_path, 12.0, seed=5, voices=list(by_engine.values()),
                             log=lambda m: None)
    assert added >= 12.0
    recs = corpus.read_manifest(tmp_path)
    assert recs
    import soundfile as sf

    for r in recs:
        assert set(r) >= {"id", "wav", "phones", "text", "voice", "engine", "augment", "split",
                          "source", "licence"}
        assert r["source"] == "tts" and r["split"] in ("train", "val") and r["licence"]
        info = sf.info(r["wav_path"])
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        ph = r["phones"]
        assert all(p[0] in text.ARPABET or p[0] == "SIL" for p in ph)
        assert all(p[1] < p[2] for p in ph)
        assert all(a[2] <= b[1] + 1e-6 for a, b in zip(ph, ph[1:]))  # ordered, no overlap
        assert ph[-1][2] <= info.duration + 1e-3
        assert 1.0 <= info.duration <= 20.5
    # resuming with the same seed adds new utterances after the existing ones, no duplicates
    corpus.build_tts(tmp_path, 1.0, seed=5, voices=list(by_engine.values()), log=lambda m: None)
    ids = [r["id"] for r in corpus.read_manifest(tmp_path)]
    assert len(ids) == len(set(ids)) > len(recs)


def test_split_holds_out_whole_voices():
    assert corpus.voice_split("flite:rms") == "val"
    assert corpus.voice_split("flite:slt") == "train"
    assert corpus.voice_split("espeak:en-us+f4") == "val"
    assert corpus.voice_split("espeak:en+f4") == "val"
    assert corpus.voice_split("espeak:en-us+m3") == "train"


def test_read_manifest_ignores_a_truncated_last_line(tmp_path):
    good = {"id": "a", "wav": "wavs/a.wav", "phones": [["SIL", 0, 1]], "split": "train"}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(good) + "\n" + '{"id": "b", "wa')
    recs = corpus.read_manifest(tmp_path)
    assert [r["id"] for r in recs] == ["a"]
    assert recs[0]["wav_path"] == str(tmp_path / "wavs/a.wav")
    assert corpus.read_manifest(tmp_path, split="val") == []


def test_phone_maps_cover_arpabet():
    assert tts_engines.cmu_to_arpabet("ax") == "AH" and tts_engines.cmu_to_arpabet("pau") == "SIL"
    assert tts_engines.espeak_to_arpabet("tS") == "CH" and tts_engines.espeak_to_arpabet("oU") == "OW"
    assert tts_engines.espeak_to_arpabet("_:") == "SIL"
    mapped = {tts_engines.espeak_to_arpabet(k) for k in tts_engines._ESPEAK_MAP}
    assert set(text.ARPABET) <= mapped | {"ZH"} and "ZH" in mapped


def test_text_covers_every_phone_and_many_diphones():
    pytest.importorskip("pocketsphinx", reason="the CMU dictionary comes with pocketsphinx")
    rng = np.random.default_rng(0)
    utts = [text.generate_utterance(rng) for _ in range(300)]
    phones, diphones = text.phone_coverage(utts)
    assert phones == set(text.ARPABET)
    assert len(diphones) > 400
    assert any(u.endswith("?") for u in utts) and any(u.endswith("!") for u in utts)
    assert text.number_words(1204) == "one thousand two hundred four"
    assert text.ordinal_words(23) == "twenty third"
    assert text.normalize_for_alignment("Press 1, then #!") == ["press", "one", "then", "pound"]


def _clicks(n=32000, at=(8000, 20000)):
    x = np.zeros(n, np.float32)
    rng = np.random.default_rng(0)
    for a in at:
        x[a:a + 400] = rng.standard_normal(400) * 0.5
    return x


@pytest.mark.parametrize("name", ["tel-mulaw", "tel-gsm", "resample", "mp3"])
def test_augmentation_keeps_timing(name):
    if (name == "tel-gsm" and not shutil.which("sox")) or (name == "mp3" and not shutil.which("ffmpeg")):
        pytest.skip(f"{name} needs sox/ffmpeg, not installed")
    fn = {"tel-mulaw": lambda x: augment.telephone(x, "mulaw"),
          "tel-gsm": lambda x: augment.telephone(x, "gsm"),
          "resample": lambda x: augment.resample_chain(x, (11025, 22050)),
          "mp3": lambda x: augment.lossy_codec(x, "mp3", "32k")}[name]
    x = _clicks()
    y = fn(x)
    assert len(y) == len(x)
    env = np.convolve(np.abs(y), np.ones(160), mode="same")
    onset = int(np.argmax(env[:14000] > 0.2 * env.max()))
    assert abs(onset - 8000) < 16 * 10 + 80  # within ~10 ms of the original onset


def test_speed_warp_scales_time():
    y = augment.speed_warp(_clicks(), 1.1)
    assert abs(len(y) - 32000 / 1.1) < 2


def test_dev_and_reserved_prompts_are_never_in_training(tmp_path, monkeypatch):
    keys = align.excluded_clip_keys()
    dev = set(align.dev_clip_keys())
    assert len(dev) == 60 and dev <= keys
    fake = {k: "hello" for k in ["vm-toenternumber", "letters/ascii60", "auth-thankyou",
                                 "agent-newlocation"]}
    snd = tmp_path / "snd"
    (snd / "letters").mkdir(parents=True)
    for k in fake:
        (snd / f"{k}.wav").write_bytes(b"")
    usable = align.asterisk_training_keys(fake, snd)
    assert usable == ["auth-thankyou"]  # dev (2) and reserved (agent-newlocation) dropped
    # without the lists nothing may be used at all
    monkeypatch.setenv("EMOTE_SHARED_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError):
        align.asterisk_training_keys(fake, snd)


@needs_tts
@pytest.mark.skipif(not _has_pocketsphinx(), reason="pocketsphinx not installed")
def test_forced_alignment_agrees_with_tts_timings():
    voice = next(v for v in VOICES if v.engine in ("flite", "festival", "espeak"))
    sentence = "The quiet dog watched the noise through the window."
    audio, phones = tts_engines.synthesize(voice, sentence)
    res = align.Aligner().align(audio, sentence)
    assert res is not None and [w[0] for w in res["words"]][:3] == ["the", "quiet", "dog"]
    # compare boundaries of matching non-silence phone sequences
    a = [p for p in phones if p[0] != "SIL"]
    b = [p for p in res["phones"] if p[0] != "SIL"]
    pairs = [(x[1], y[1]) for x, y in zip(a, b) if x[0] == y[0]]
    assert len(pairs) >= 0.6 * len(a)
    assert np.median([abs(x - y) for x, y in pairs]) < 0.03
