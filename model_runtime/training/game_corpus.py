"""Real speech of many speakers from a Debian game (Flight of the Amazon Queen) as
pseudo-ground-truth: each clip's line found from the game's own texts, force-aligned with
pocketsphinx, implausible alignments dropped, speaker ids from the clip names and conversations.

    nice -n 10 python -m model_runtime.training.game_corpus --out /work/data/queen_corpus \
        [--limit N] [--kinds dialogue,description,cutscene]

Writes, under --out: `wavs/*.wav` (16 kHz PCM16), `manifest.jsonl` (the corpus format of
corpus.py, with `speaker`, `split` and `game` added), `decisions.jsonl` (every clip looked at:
kept or dropped and why), `talk_map.json` (conversation number -> its DOG file) and `report.md`.
Resumable: a rerun skips every clip already in decisions.jsonl.

How a clip's text is found. A conversation clip (NNHHHH[J|P]p) is decoded with pocketsphinx against an n-gram LM of the
conversation file's parts (which file conversation NN is comes from decoding its longest clips
against all conversations and a vote; a conversation no vote settles is decoded against all the
DOG files no vote claimed); a cutscene clip against its CUT file's parts, one of Joe's object
descriptions (JOEiiiip) against QUEEN2.JAS. The closest
part by word error rate is kept only when it is clearly best (see MAX_WER, MIN_MARGIN).
Speakers: J and JOE clips are Joe; P clips are the conversation's character (BOB3.DOG -> bob);
cutscene clips name no speaker and are kept as `unknown`, which the training split never uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

MANIFEST = "manifest.jsonl"
DECISIONS = "decisions.jsonl"
TALK_MAP = "talk_map.json"
# a recognised clip is matched to the closest script part when its word error rate is at most
# MAX_WER and the next different part is at least MIN_MARGIN worse; one- and two-word parts must
# be recognised exactly
MAX_WER = 0.40
MIN_MARGIN = 0.20
SHORT_WORDS = 2
# plausibility of a forced alignment
MIN_PHONE_RATE = 4.0      # phones per second of aligned speech
MAX_PHONE_RATE = 22.0
MAX_PHONE_S = 0.60        # longest non-silent phone
MAX_LOUD_IN_SIL = 0.25    # share of loud frames (within 30 dB of the peak) aligned to silence
MIN_CLIP_S = 0.4
MAX_CLIP_S = 20.0
KIND_ORDER = ("dialogue", "description", "cutscene")
# pocketsphinx language weight (default 6.5): with the LM's small back-off mass (line_lm.DISCOUNT
# 0.1) this matched 26 of 40 conversation clips against 13 with the defaults
LANGUAGE_WEIGHT = 10.0
VOTE_CLIPS = 6
VOTE_WER = 0.5


def log(msg: str) -> None:
    print(msg, flush=True)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Recogniser:
    """pocketsphinx decoding against small n-gram LMs of script parts (one search per LM)."""

    def __init__(self, aligner, lm_dir: Path):
        from pocketsphinx import Decoder

        self.aligner = aligner
        self.lm_dir = Path(lm_dir)
        self.lm_dir.mkdir(parents=True, exist_ok=True)
        self.dec = Decoder(samprate=16000, lm=None, fwdflat=False, bestpath=False,
                           lw=LANGUAGE_WEIGHT, loglevel="FATAL")
        self.searches: set[str] = set()
        self.current: str | None = None
        self.known: set[str] = set()

    def words(self, text: str) -> list[str]:
        """Dictionary words of a text (unknown ones given pronunciations, as the aligner does)."""
        words = self.aligner.words(text)
        for w in words:
            if w not in self.known:
                pr = self.aligner._pron(w)
                if pr:
                    self.dec.add_word(w, " ".join(pr), True)
                self.known.add(w)
        return words

    def prepare(self, texts: list[str]) -> None:
        """Add every word of `texts` to the dictionary up front: adding words once a search is
        active rebuilds it each time (seconds per word with a large LM)."""
        for t in texts:
            self.words(t)

    def use(self, name: str, sentences: list[list[str]]) -> None:
        """Activate the LM of `sentences` (written and loaded once per name)."""
        from .line_lm import write_arpa

        if name not in self.searches:
            path = self.lm_dir / f"{name}.arpa"
            write_arpa([s for s in sentences if s], path)
            self.dec.add_lm_file(name, str(path))
            self.searches.add(name)
        if self.current != name:  # switching searches costs ~0.1 s
            self.dec.activate_search(name)
            self.current = name

    def decode(self, audio16k: np.ndarray) -> list[str]:
        pcm = (np.clip(audio16k, -1, 1) * 32767).astype(np.int16).tobytes()
        self.dec.start_utt()
        self.dec.process_raw(pcm, full_utt=True)
        self.dec.end_utt()
        h = self.dec.hyp()
        return [w for w in (h.hypstr.split() if h else [])
                if not w.startswith(("<", "[", "+"))]


def match_line(hyp: list[str], parts: list[list[str]]) -> tuple[int | None, dict]:
    """Index of the clearly best part for a recognised word list, else None, with the scores."""
    from .line_lm import best_lines

    best = best_lines(hyp, parts, top=2)
    info = {"hyp": " ".join(hyp)}
    if not best:
        info["reason"] = "nothing recognised"
        return None, info
    wer, i = best[0]
    second = best[1][0] if len(best) > 1 else 1.0
    info.update(wer=round(wer, 3), second_wer=round(second, 3))
    if len(parts[i]) <= SHORT_WORDS and wer > 0:
        info["reason"] = f"short line not recognised exactly (WER {wer:.2f})"
        return None, info
    if wer > MAX_WER:
        info["reason"] = f"no script line close enough (best WER {wer:.2f} > {MAX_WER})"
        return None, info
    if second - wer < MIN_MARGIN:
        info["reason"] = (f"two lines fit about equally (WER {wer:.2f} vs {second:.2f}, margin "
                          f"under {MIN_MARGIN})")
        return None, info
    return i, info


def loud_frames(audio16k: np.ndarray, hop: int = 160) -> np.ndarray:
    """Boolean per 10 ms frame: energy within 30 dB of the clip's loudest frame."""
    n = len(audio16k) // hop
    if n == 0:
        return np.zeros(0, bool)
    e = (audio16k[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1)
    db = 10 * np.log10(e + 1e-12)
    return db > db.max() - 30.0


def plausibility(phones: list, words: list, n_text_words: int, audio16k: np.ndarray) -> str | None:
    """Why an alignment is implausible, or None when it passes every check."""
    speech = [p for p in phones if p[0] != "SIL"]
    if not speech:
        return "alignment holds no speech"
    if len(words) != n_text_words:
        return f"aligned {len(words)} of {n_text_words} words"
    span = speech[-1][2] - speech[0][1]
    rate = len(speech) / max(span, 1e-3)
    if not MIN_PHONE_RATE <= rate <= MAX_PHONE_RATE:
        return f"speech rate {rate:.1f} phones/s outside {MIN_PHONE_RATE}-{MAX_PHONE_RATE}"
    longest = max(p[2] - p[1] for p in speech)
    if longest > MAX_PHONE_S:
        return f"a phone lasts {longest:.2f} s (> {MAX_PHONE_S})"
    loud = loud_frames(audio16k)
    if loud.any():
        sil = np.zeros(len(loud), bool)
        for p in phones:
            if p[0] == "SIL":
                sil[int(p[1] * 100): int(p[2] * 100)] = True
        share = float((loud & sil).sum() / loud.sum())
        if share > MAX_LOUD_IN_SIL:
            return f"{share:.0%} of the loud frames fall in silence (untranscribed speech?)"
    return None


class QueenSource:
    """The game's clips, script parts grouped by resource, and the clip -> candidate resource."""

    def __init__(self, arc=None):
        from . import queen_data as qd

        self.qd = qd
        self.arc = arc or qd.QueenArchive()
        self.parts = qd.game_lines(self.arc)
        self.by_source: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(self.parts):
            self.by_source[p["source"]].append(i)
        self.cuts = {s[:-4]: s for s in self.by_source if s.endswith(".CUT")}

    def clips(self, kinds=KIND_ORDER) -> list[tuple[str, dict]]:
        """(clip, kind info) in build order: conversations (people first), descriptions, cutscenes."""
        out = []
        for name in self.arc.speech_names():
            k = self.qd.clip_kind(name)
            if k["kind"] == "cutscene":
                src = self.cuts.get(name[:5].rstrip("_"))
                if src is None:
                    k = {"kind": "other"}
                else:
                    k["source"] = src
            if k["kind"] in kinds:
                out.append((name, k))
        rank = {k: i for i, k in enumerate(KIND_ORDER)}
        out.sort(key=lambda c: (rank[c[1]["kind"]], c[1].get("who") != "person", c[0]))
        return out

    def description_text(self, k: dict) -> str | None:
        for i in self.by_source.get("QUEEN2.JAS", []):
            p = self.parts[i]
            if p["line"] == k["line"] and p["part"] == k["part"]:
                return p["text"]
        return None


def resolve_talk_map(src: QueenSource, rec: Recogniser, out: Path) -> dict[str, str]:
    """Conversation number -> DOG file, by decoding each conversation's longest clips against all
    conversation parts and taking the file that most of them come closest to (a clip votes when
    its closest part has WER <= VOTE_WER; the winner needs 2 votes and more than any other file).
    The decoded words are kept in talk_hyps.json, so the vote is cheap to redo."""
    from .line_lm import best_lines

    path = out / TALK_MAP
    if path.is_file():
        return json.loads(path.read_text())
    dog_idx = [i for s, ix in src.by_source.items() if s.endswith(".DOG") for i in ix]
    words = [rec.words(src.parts[i]["text"]) for i in dog_idx]
    hyp_path = out / "talk_hyps.json"
    hyps = json.loads(hyp_path.read_text()) if hyp_path.is_file() else {}
    by_talk: dict[str, list[str]] = defaultdict(list)
    for name, k in src.clips(("dialogue",)):
        by_talk[k["talk"]].append(name)
    talk_map, votes_out = {}, {}
    for talk, names in sorted(by_talk.items()):
        longest = sorted(names, key=lambda n: -src.arc.entries[n + ".SB"].size)[:VOTE_CLIPS]
        votes = []
        for n in longest:
            if n not in hyps:
                rec.use("all_dog", words)
                hyps[n] = rec.decode(src.arc.audio16k(n))
                hyp_path.write_text(json.dumps(hyps))
            best = best_lines(hyps[n], words, top=1)
            if best and best[0][0] <= VOTE_WER:
                votes.append(src.parts[dog_idx[best[0][1]]]["source"])
        c = Counter(votes).most_common(2)
        votes_out[talk] = dict(Counter(votes))
        if c and c[0][1] >= 2 and (len(c) == 1 or c[0][1] > c[1][1]):
            talk_map[talk] = [c[0][0]]
        else:  # files of one character tie (FAYE3 vs FAYE6): the speaker is still known
            chars = Counter(src.qd.character_of(v) for v in votes).most_common(2)
            if chars and chars[0][1] >= 2 and (len(chars) == 1 or chars[0][1] > chars[1][1]):
                talk_map[talk] = sorted({v for v in votes
                                         if src.qd.character_of(v) == chars[0][0]})
        log(f"[talk] {talk}: votes {votes_out[talk]} -> {talk_map.get(talk, 'unresolved')}")
    path.write_text(json.dumps(talk_map, indent=1, sort_keys=True))
    (out / "talk_votes.json").write_text(json.dumps(votes_out, indent=1, sort_keys=True))
    return talk_map


def _match_clip(src: QueenSource, rec: Recogniser, talk_map: dict, unclaimed: list,
                k: dict, audio: np.ndarray, dec: dict) -> tuple[str | None, str | None, str | None]:
    """The script line a clip speaks, found by decoding it against the candidate parts of its
    kind: (text, speaker, script source), each None when unknown; `dec` gets the match details."""
    if k["kind"] == "dialogue":
        files = talk_map.get(k["talk"])
        if not files:  # unresolved conversation: the DOG files no vote claimed
            files, search = unclaimed, "unclaimed_dog"
        else:
            search = "__".join(files).replace(".", "_")
    elif k["kind"] == "description":
        # the number in a JOE clip's name is not simply its QUEEN2.JAS line (taking it
        # so failed most alignments), so descriptions are matched like cutscenes
        files, search = ["QUEEN2.JAS"], "QUEEN2_JAS"
    else:
        files = [k["source"]]
        search = k["source"].replace(".", "_")
    idx = [i for f in files for i in src.by_source[f]]
    words = [rec.words(src.parts[i]["text"]) for i in idx]
    rec.use(search, words)
    j, info = match_line(rec.decode(audio), words)
    dec.update(info)
    text, source = None, None
    if j is not None:
        text = src.parts[idx[j]]["text"]
        source = src.parts[idx[j]]["source"]
        dec.pop("reason", None)
    if k["kind"] == "dialogue":
        dec["talk"] = k["talk"]
        # a person's clip speaks for the character whose file its line is in
        speaker = "joe" if k["who"] == "joe" else (
            src.qd.character_of(source) if source else None)
    else:
        speaker = "joe" if k["kind"] == "description" else "unknown"
    return text, speaker, source


def _aligned_record(aligner, out: Path, name: str, k: dict, audio: np.ndarray, text: str,
                    speaker: str | None, source: str | None, dec: dict) -> dict | None:
    """The manifest row of a clip whose line is known, with its wav written, or None (and the
    reason in `dec`) when the forced alignment fails or is implausible."""
    from . import queen_data as qd, speaker_split
    from .corpus import _write_wav

    res = aligner.align(audio, text)
    if res is None:
        dec["reason"] = "forced alignment failed"
        return None
    why = plausibility(res["phones"], res["words"], len(aligner.words(text)), audio)
    if why:
        dec["reason"] = why
        return None
    uid = f"queen-{name}"
    _write_wav(out / "wavs" / f"{uid}.wav", audio)
    r = {"id": uid, "wav": f"wavs/{uid}.wav", "phones": res["phones"],
         "words": res["words"], "text": text, "voice": f"queen:{speaker}",
         "speaker": f"queen:{speaker}", "engine": "pocketsphinx-align",
         "augment": "game-11k", "source": "game", "game": "queen",
         "clip_kind": k["kind"], "script_source": source,
         "talk": k.get("talk"), "who": k.get("who"),
         "licence": qd.QUEEN_LICENCE}
    try:
        r["split"] = speaker_split.split_of(r)
    except FileNotFoundError:  # the held-out list is chosen after a build
        r["split"] = "pending"
    return r


def build_queen(out: Path, limit: int | None = None, kinds=KIND_ORDER, progress=log,
                shard: tuple[int, int] = (0, 1)) -> dict:
    """Build (or continue) the corpus; returns counts of kept and dropped clips. With shard (k, n)
    this process decides only clips k, k + n, k + 2n, ... of the game's list, so n processes
    share the cores; they append whole lines to the same files, and a rerun of any resumes."""
    from . import align

    out.mkdir(parents=True, exist_ok=True)
    src = QueenSource()
    aligner = align.Aligner()
    rec = Recogniser(aligner, out / "lm")
    rec.prepare([p["text"] for p in src.parts])
    for p in src.parts:  # same for the aligner's decoder
        aligner.words(p["text"])
    talk_map = resolve_talk_map(src, rec, out) if "dialogue" in kinds else {}
    claimed = {f for files in talk_map.values() for f in files}
    unclaimed = sorted(s for s in src.by_source if s.endswith(".DOG") and s not in claimed)
    done = {d["clip"] for d in _read_jsonl(out / DECISIONS)}
    todo = [(n, k) for i, (n, k) in enumerate(src.clips(kinds))
            if i % shard[1] == shard[0] and n not in done]
    if limit is not None:
        todo = todo[:limit]
    progress(f"[queen] {len(done)} clips already decided, {len(todo)} to go")
    t0, audio_s, counts = time.time(), 0.0, Counter()
    with open(out / DECISIONS, "a", encoding="utf-8") as df, \
            open(out / MANIFEST, "a", encoding="utf-8") as mf:
        for n_done, (name, k) in enumerate(todo, 1):
            audio = src.arc.audio16k(name)
            dur = len(audio) / 16000
            audio_s += dur
            dec = {"clip": name, "kind": k["kind"], "seconds": round(dur, 2)}
            text = None
            if not MIN_CLIP_S <= dur <= MAX_CLIP_S:
                dec["reason"] = f"clip lasts {dur:.1f} s (kept {MIN_CLIP_S}-{MAX_CLIP_S} s)"
            else:
                text, speaker, source = _match_clip(src, rec, talk_map, unclaimed, k, audio, dec)
            r = (_aligned_record(aligner, out, name, k, audio, text, speaker, source, dec)
                 if text is not None else None)
            if r is not None:
                mf.write(json.dumps(r) + "\n")
                mf.flush()
                dec.update(status="kept", speaker=r["speaker"], text=text, split=r["split"])
            if dec.get("status") != "kept":
                dec["status"] = "dropped"
                dec.setdefault("reason", "no text found")
            counts[dec["status"]] += 1
            df.write(json.dumps(dec) + "\n")
            df.flush()
            if n_done % 50 == 0:
                el = time.time() - t0
                progress(f"[queen] {n_done}/{len(todo)} clips, kept {counts['kept']}, "
                         f"{audio_s / 60:.1f} min audio in {el / 60:.1f} min "
                         f"({audio_s / max(el, 1e-6):.1f}x real time)")
    write_report(out)
    return dict(counts)


def write_report(out: Path, title: str = "Flight of the Amazon Queen speech corpus") -> str:
    """report.md: clips kept and dropped (by reason, kind and speaker), hours kept."""
    decs = _read_jsonl(out / DECISIONS)
    kept = [d for d in decs if d["status"] == "kept"]
    reasons = Counter(_reason_class(d["reason"]) for d in decs if d["status"] != "kept")
    by_kind = defaultdict(Counter)
    for d in decs:
        by_kind[d["kind"]][d["status"]] += 1
    spk = Counter(d["speaker"] for d in kept)
    spk_s = Counter()
    for d in kept:
        spk_s[d["speaker"]] += d["seconds"]
    lines = [f"# {title}: build report", "",
             f"Clips looked at: {len(decs)}; kept {len(kept)} "
             f"({sum(d['seconds'] for d in kept) / 3600:.2f} h of "
             f"{sum(d['seconds'] for d in decs) / 3600:.2f} h).", "",
             "| kind | kept | dropped |", "| --- | ---: | ---: |"]
    for kind, c in sorted(by_kind.items()):
        lines.append(f"| {kind} | {c['kept']} | {c['dropped']} |")
    lines += ["", "## Why clips were dropped", "", "| reason | clips |", "| --- | ---: |"]
    for r, n in reasons.most_common():
        lines.append(f"| {r} | {n} |")
    lines += ["", "## Speakers kept", "", "| speaker | clips | minutes |", "| --- | ---: | ---: |"]
    for s, n in spk.most_common():
        lines.append(f"| {s} | {n} | {spk_s[s] / 60:.1f} |")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def _reason_class(reason: str) -> str:
    """A reason without its numbers, so the report groups alike drops."""
    import re

    return re.sub(r"\s*\([^)]*\)", "", re.sub(r"\b\d+(\.\d+)?%?", "N", reason)).strip()


def parse_shard(ap: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """--shard K/N as (K, N), or the parser's error naming the fix."""
    try:
        k, n = (int(x) for x in text.split("/"))
        if 0 <= k < n:
            return k, n
    except ValueError:
        pass
    ap.error(f"--shard {text!r}: give K/N with 0 <= K < N, e.g. 1/2")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/work/data/queen_corpus")
    ap.add_argument("--limit", type=int, default=None, help="decide at most N more clips")
    ap.add_argument("--kinds", default=",".join(KIND_ORDER),
                    help="clip kinds to take: dialogue,description,cutscene")
    ap.add_argument("--report-only", action="store_true", help="rewrite report.md and stop")
    ap.add_argument("--shard", default="0/1", metavar="K/N",
                    help="decide only clips K, K+N, K+2N, ... (run N processes, K = 0..N-1, "
                         "once talk_map.json exists)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    import os

    if os.nice(0) < 10:  # hours of decoding on shared cores: always run at low priority
        os.nice(10 - os.nice(0))
    if args.report_only:
        print(write_report(out))
        return 0
    kinds = tuple(k for k in args.kinds.split(",") if k)
    bad = [k for k in kinds if k not in KIND_ORDER]
    if bad:
        ap.error(f"unknown --kinds {bad}; choose from {', '.join(KIND_ORDER)}")
    counts = build_queen(out, args.limit, kinds, shard=parse_shard(ap, args.shard))
    log(f"[queen] done: {counts}; report at {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
