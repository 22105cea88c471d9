"""Which real speakers are held out of training: whole game characters, listed with their clip
ids in the committed file `heldout_clips.txt` beside this module (no audio).

Every record of a game corpus gets its split from here when it is read, not from what a build
once wrote, so a held-out speaker cannot reach a training split through a stale manifest:
- "heldout": the speaker (or the clip) is in the list, or the clip is the other person's line in
  a conversation of a held-out character: evaluation and model selection only;
- "unlabelled": the clip names no speaker (cutscenes): it could be any held-out voice, so it is
  never trained on;
- "train": every other game speaker.
Records of other sources (TTS, Asterisk) keep their own split.
"""

from __future__ import annotations

import functools
from pathlib import Path

HELDOUT_FILE = Path(__file__).with_name("heldout_clips.txt")
UNKNOWN_SPEAKERS = frozenset({"queen:unknown", ""})
HELDOUT = "heldout"
UNLABELLED = "unlabelled"


@functools.lru_cache(maxsize=4)
def load_heldout(path: str | None = None) -> tuple[frozenset, frozenset]:
    """(held-out speakers, held-out clip ids and `talk:NN` conversation keys) from the list file.

    Raises FileNotFoundError when it is missing, so game speech is never used unsplit.
    """
    p = Path(path) if path else HELDOUT_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing: without it nobody knows which game speakers "
                                "are held out, so no game speech is used. Restore it from git "
                                "or write it with python -m model_runtime.training.speaker_split")
    speakers, clips = set(), set()
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0] == "speaker":
            speakers.add(fields[1])
        elif fields[0] == "talk":
            clips.add(f"talk:{fields[1]}")
        else:
            clips.add(fields[0])
            if len(fields) > 1:
                speakers.add(fields[1])
    return frozenset(speakers), frozenset(clips)


def split_of(rec: dict, path: str | None = None) -> str:
    """The split of one manifest record (see the module docstring)."""
    if rec.get("source") != "game":
        return str(rec.get("split", "train"))
    speakers, clips = load_heldout(path)
    spk = str(rec.get("speaker", ""))
    if spk in speakers or str(rec.get("id")) in clips:
        return HELDOUT
    # the other person in a conversation of a held-out character is that character, whatever
    # file the clip's line was matched in (a safety net against one mismatched line)
    if rec.get("who") == "person" and f"talk:{rec.get('talk')}" in clips:
        return HELDOUT
    if spk in UNKNOWN_SPEAKERS:
        return UNLABELLED
    return "train"


MIN_TALK_SHARE = 0.6


def reconcile(records: list[dict]) -> list[dict]:
    """Records with one speaker per conversation: the "person" lines of a conversation are one
    character, so where their matched lines name several, the majority (at least 2 clips and
    MIN_TALK_SHARE of them) stands and the others become `queen:unknown` (kept out of training);
    with no clear majority all do. Returns copies; the original label stays as `line_speaker`.
    """
    from collections import Counter, defaultdict

    by_talk: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.get("source") == "game" and r.get("who") == "person" and r.get("talk"):
            by_talk[str(r["talk"])][str(r.get("speaker", ""))] += 1
    majority = {}
    for talk, c in by_talk.items():
        spk, n = c.most_common(1)[0]
        if n >= 2 and n >= MIN_TALK_SHARE * sum(c.values()) or len(c) == 1:
            majority[talk] = spk
    out = []
    for r in records:
        if r.get("source") == "game" and r.get("who") == "person" and r.get("talk"):
            want = majority.get(str(r["talk"]))
            if want != r.get("speaker"):
                r = {**r, "line_speaker": r.get("speaker"), "speaker": "queen:unknown"}
        out.append(r)
    return out


def choose_heldout(records: list[dict], n_speakers: int = 8, min_bilabials: int = 200,
                   exclude: frozenset = frozenset({"queen:joe"}), seed: str = "heldout-v1"
                   ) -> list[str]:
    """Speakers to hold out, chosen deterministically from aligned game records.

    Candidates are labelled speakers other than `exclude` (Joe, the player, speaks a third of the
    game and stays in training) with at least 10 clips. They are ordered by a hash of
    `seed` and the name (not by size, so the held-out set is not just the biggest voices), and
    taken until there are `n_speakers` of them holding `min_bilabials` bilabials in all.
    """
    import hashlib

    from .metrics import BILABIALS, MIN_BILABIAL_S

    clips: dict[str, int] = {}
    bil: dict[str, int] = {}
    for r in records:
        spk = str(r.get("speaker", ""))
        if r.get("source") != "game" or spk in UNKNOWN_SPEAKERS or spk in exclude:
            continue
        clips[spk] = clips.get(spk, 0) + 1
        bil[spk] = bil.get(spk, 0) + sum(
            1 for p in r["phones"] if p[0] in BILABIALS and p[2] - p[1] >= MIN_BILABIAL_S - 1e-6)
    cands = sorted((s for s in clips if clips[s] >= 10),
                   key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    chosen, total = [], 0
    for s in cands:
        if len(chosen) >= n_speakers and total >= min_bilabials:
            break
        chosen.append(s)
        total += bil[s]
    if len(chosen) < n_speakers or total < min_bilabials:
        raise ValueError(f"only {len(chosen)} speakers with {total} bilabials available; need "
                         f"{n_speakers} and {min_bilabials}")
    return chosen


def write_heldout(records: list[dict], speakers: list[str], path: Path = HELDOUT_FILE) -> int:
    """Write the list file: one `speaker NAME` line per held-out speaker, then their clip ids."""
    lines = ["# Game speakers held out of training (whole characters): evaluation and model",
             "# selection only. Written by python -m model_runtime.training.speaker_split;",
             "# clip ids of the build that chose them follow (no audio is kept in git)."]
    lines += [f"speaker {s}" for s in sorted(speakers)]
    held = [r for r in records if r.get("source") == "game" and r.get("speaker") in set(speakers)]
    lines += [f"talk {t}" for t in sorted({str(r["talk"]) for r in held
                                          if r.get("who") == "person" and r.get("talk")})]
    ids = sorted((str(r["id"]), str(r["speaker"])) for r in held)
    lines += [f"{i} {s}" for i, s in ids]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_heldout.cache_clear()
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .corpus import read_manifest

    ap = argparse.ArgumentParser(description="Choose and write the held-out game speakers")
    ap.add_argument("--corpus", default="/work/data/queen_corpus")
    ap.add_argument("--out", default=str(HELDOUT_FILE))
    ap.add_argument("--speakers", type=int, default=8)
    ap.add_argument("--bilabials", type=int, default=200)
    args = ap.parse_args(argv)
    recs = reconcile(read_manifest(args.corpus))
    chosen = choose_heldout(recs, args.speakers, args.bilabials)
    n = write_heldout(recs, chosen, Path(args.out))
    print(f"held out {len(chosen)} speakers ({', '.join(chosen)}), {n} clips -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
