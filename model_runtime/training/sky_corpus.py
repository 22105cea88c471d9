"""Beneath a Steel Sky's acted speech as pseudo-ground-truth: each clip's line comes with the game
(sky_data), so it is only force-aligned with pocketsphinx and checked like the Amazon Queen's
(game_corpus.plausibility); more voices for the training split, never for evaluation.

    nice -n 10 python -m model_runtime.training.sky_corpus --out /work/data/sky_corpus \
        [--limit N] [--shard K/N]

Writes, under --out: `wavs/*.wav` (16 kHz PCM16), `manifest.jsonl` (the corpus format of
corpus.py with `speaker`, `split`, `game`), `decisions.jsonl` (every clip, kept or dropped and
why) and `report.md`. Resumable: a rerun skips every clip already decided.

Speakers. The game names no speaker per line, so `speaker` is the text section (the part of the
game: `sky:s0` .. `sky:s6`), a pseudo-voice for stage 2's speaker balance that mixes the cast of
that act. The Amazon Queen's held-out characters are a different cast from a different studio,
so every clip here is training speech.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from .game_corpus import (DECISIONS, MANIFEST, _read_jsonl, parse_shard, plausibility,
                          write_report)


def log(msg: str) -> None:
    print(msg, flush=True)


def clip_record(aligner, out: Path, clip, dec: dict) -> dict | None:
    """The manifest row of one clip, with its wav written, or None (the reason in `dec`)."""
    from . import sky_data
    from .corpus import _write_wav

    res = aligner.align(clip.audio, clip.text)
    if res is None:
        dec["reason"] = "forced alignment failed"
        return None
    why = plausibility(res["phones"], res["words"], len(aligner.words(clip.text)), clip.audio)
    if why:
        dec["reason"] = why
        return None
    uid = f"sky-{clip.text_number}"
    _write_wav(out / "wavs" / f"{uid}.wav", clip.audio)
    return {"id": uid, "wav": f"wavs/{uid}.wav", "phones": res["phones"], "words": res["words"],
            "text": clip.text, "voice": f"sky:{clip.group}", "speaker": f"sky:{clip.group}",
            "engine": "pocketsphinx-align", "augment": "game-11k", "source": "game",
            "game": "sky", "block": clip.block, "split": "train",
            "licence": sky_data.SKY_LICENCE}


def build_sky(out: Path, limit: int | None = None, shard: tuple[int, int] = (0, 1),
              progress=log) -> dict:
    """Build (or continue) the corpus; counts of kept and dropped clips. With shard (k, n) this
    process decides only clips k, k + n, ... of the game's list (n processes share the cores)."""
    from . import align, sky_data

    out.mkdir(parents=True, exist_ok=True)
    aligner = align.Aligner()
    done = {d["clip"] for d in _read_jsonl(out / DECISIONS)}
    t0, audio_s, counts, n_done = time.time(), 0.0, Counter(), 0
    with open(out / DECISIONS, "a", encoding="utf-8") as df, \
            open(out / MANIFEST, "a", encoding="utf-8") as mf:
        for i, clip in enumerate(sky_data.speech_clips()):
            if i % shard[1] != shard[0] or clip.id in done:
                continue
            if limit is not None and n_done >= limit:
                break
            n_done += 1
            audio_s += clip.seconds
            dec = {"clip": clip.id, "kind": "line", "seconds": round(clip.seconds, 2)}
            r = clip_record(aligner, out, clip, dec)
            if r is not None:
                mf.write(json.dumps(r) + "\n")
                mf.flush()
                dec.update(status="kept", speaker=r["speaker"], text=clip.text, split="train")
            else:
                dec["status"] = "dropped"
            counts[dec["status"]] += 1
            df.write(json.dumps(dec) + "\n")
            df.flush()
            if n_done % 100 == 0:
                el = time.time() - t0
                progress(f"[sky] {n_done} clips, kept {counts['kept']}, {audio_s / 60:.1f} min "
                         f"audio in {el / 60:.1f} min ({audio_s / max(el, 1e-6):.1f}x real time)")
    write_report(out, "Beneath a Steel Sky speech corpus")
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/work/data/sky_corpus")
    ap.add_argument("--limit", type=int, default=None, help="decide at most N more clips")
    ap.add_argument("--shard", default="0/1", metavar="K/N",
                    help="decide only clips K, K+N, K+2N, ... (run N processes, K = 0..N-1)")
    args = ap.parse_args(argv)
    import os

    from . import sky_data

    if not sky_data.installed():
        ap.error(f"{sky_data.SKY_DIR / 'sky.dsk'} is missing: apt-get install beneath-a-steel-sky")
    shard = parse_shard(ap, args.shard)
    if os.nice(0) < 10:  # minutes of alignment on shared cores: low priority
        os.nice(10 - os.nice(0))
    counts = build_sky(Path(args.out), args.limit, shard)
    log(f"[sky] done: {counts}; report at {Path(args.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
