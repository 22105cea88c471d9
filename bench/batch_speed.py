"""Batch throughput: N short dialogue lines (1-3 s) plus one corrupt file through
`python -m model_runtime batch`; prints lines per minute and what happened to the corrupt file.

    .venv/bin/python bench/batch_speed.py [--lines 200] [--tts flite|espeak-ng|none]
        [--model default|DIR|random] [--jobs N]

Lines are spoken by Flite/eSpeak NG when installed (--tts), else synthetic speech-like audio.
`--model random` (the fallback when no bundled model is installed) has the bundled architecture
with random weights: the same computation as the real model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "devpath"))  # this checkout as the package `emote`
WORDS = ("we", "should", "leave", "before", "the", "storm", "arrives", "tonight", "maybe",
         "you", "are", "right", "about", "that", "boat", "honestly", "wait", "look", "over",
         "there", "it", "is", "moving")


def make_lines(folder: Path, n: int, tts: str, seed: int = 0) -> list[Path]:
    """N lines of one to three seconds: TTS sentences, or synthetic audio."""
    import soundfile as sf

    from emote.model_runtime.audio import resample

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"line_{i:03d}.wav"
        seconds = float(rng.uniform(1.0, 3.0))
        if tts != "none":
            text = " ".join(rng.choice(WORDS, size=max(2, int(seconds * 2.5))))
            raw = folder / f".raw_{i}.wav"
            cmd = ([tts, "-voice", "slt", "-t", text, "-o", str(raw)] if tts == "flite"
                   else [tts, "-w", str(raw), text])
            subprocess.run(cmd, check=True, capture_output=True)
            x, sr = sf.read(str(raw), dtype="float32", always_2d=True)
            x = resample(x.mean(axis=1), sr, 16000)[:int(3.0 * 16000)]
            raw.unlink()
        else:
            t = np.arange(int(seconds * 16000)) / 16000
            env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t)
            x = env * np.sign(np.sin(2 * np.pi * rng.uniform(100, 220) * t)) * 0.3
            x = (x + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        sf.write(str(path), x, 16000)
        out.append(path)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--tts", default=None, help="flite, espeak-ng or none (default: flite "
                                                "when installed)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--no-face-life", action="store_true",
                    help="lines without blinks, gaze and head motion (the default has them)")
    ap.add_argument("--keep", default=None, help="keep the lines and results in this folder")
    args = ap.parse_args(argv)
    tts = args.tts or ("flite" if shutil.which("flite") else "none")

    from emote.model_runtime.checkpoints import default_model_dir

    work = Path(args.keep or tempfile.mkdtemp(prefix="emote_batch_speed_"))
    t = time.perf_counter()
    lines = make_lines(work / "lines", args.lines, tts)
    (work / "lines" / "line_corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    made_s = time.perf_counter() - t
    model = args.model or ("default" if (default_model_dir() / "config.json").is_file()
                           else "random")
    if model == "random":
        from bench.e2e import random_default_arch_model

        model = str(random_default_arch_model(work / "random_default_arch", sys.executable))
    audio_s = 0.0
    import soundfile as sf

    for p in lines:
        audio_s += sf.info(str(p)).duration
    out = work / "results"
    cmd = [sys.executable, "-m", "model_runtime", "batch", str(work / "lines"), "--out", str(out),
           "--model", model, "--progress", "none"]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    if args.no_face_life:
        cmd += ["--no-blinks", "--no-gaze", "--no-head-motion"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    with (out / "batch_report.csv").open(newline="") as fh:
        failed = [r for r in csv.DictReader(fh) if r["status"] != "done"]
    print(f"{args.lines} lines ({audio_s:.0f} s of {tts} audio, made in {made_s:.0f} s) + 1 "
          f"corrupt file, {os.cpu_count()} CPU cores, jobs={args.jobs or 'auto'}:")
    print(f"  wall {wall:.1f} s (incl. process start-up) -> "
          f"{summary['generated'] / wall * 60:.0f} lines/minute; runtime's own figure "
          f"{summary['lines_per_minute']} lines/minute")
    print(f"  generated {summary['generated']}, failed {summary['failed']}, exit code "
          f"{proc.returncode}")
    for r in failed:
        print(f"  failed line {r['name']!r} ({r['kind']}): {r['message']}")
    print(json.dumps({"lines": args.lines, "tts": tts, "wall_s": round(wall, 2),
                      "lines_per_minute": round(summary["generated"] / wall * 60, 1),
                      "generated": summary["generated"], "failed": summary["failed"],
                      "failed_names": [r["name"] for r in failed], "work": str(work)}))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
