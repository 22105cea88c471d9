"""Runtime speed on this machine: seconds and x-real-time for 60 s of audio (log-mel and wav2vec2
paths, random weights of the real sizes) and peak memory (RSS) for 10 minutes on the log-mel path.

Times exclude interpreter start and model loading (one short warm-up run is made first). A timed
request is the whole runtime step: read + resample the audio file, build conditions, windowed
inference, resample the output to 30 fps (no file write).

    .venv/bin/python bench/runtime_speed.py [--threads 2] [--seconds 60] [--long-minutes 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

N_EXP, N_IDENTITIES, OUT_FPS = 100, 32, 30.0  # EMOTE v2 output size, MEAD speakers


def _speechy(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Noise shaped by a 4 Hz syllable envelope with pauses: spectrally busy, like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.5)
    voiced = np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 280 * t)
    return (0.2 * env * (voiced + 0.3 * rng.standard_normal(t.size))).astype(np.float32)


def _rss_peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_now_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _request(path: Path, seconds: float) -> dict:
    return {"audio": str(path), "audio_start_s": 0.0, "audio_end_s": None, "fps": OUT_FPS,
            "frame_count": None, "model": "bench", "identity": None,
            "emotion": {"names": ["happy"], "weights": [[1.0]]}, "intensity": [0.7]}


def _time_request(model, config, path: Path, seconds: float) -> float:
    from emote.model_runtime.inference import generate_result

    t0, c0 = time.perf_counter(), time.process_time()
    res = generate_result(_request(path, seconds), model, config, "bench")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert res["exp"].shape[0] == int(np.floor(seconds * OUT_FPS + 0.5))
    return elapsed, cpu


def _build(arch_overrides: dict):
    from emote.model_runtime.checkpoints import build_model, default_arch, make_config

    arch = {**default_arch(N_EXP + 3, N_IDENTITIES), **arch_overrides}
    config = make_config(arch, [f"exp{i:03d}" for i in range(N_EXP)],
                         [f"id{i:02d}" for i in range(N_IDENTITIES)], "flame2020")
    model = build_model(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    return model, config, n_params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--seconds", type=float, default=60.0, help="clip length for speed")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="clip length for memory")
    args = ap.parse_args()

    import soundfile as sf
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.1f}; audio written as 44.1 kHz WAV")
    tmp = Path(tempfile.mkdtemp(prefix="emote_bench_"))
    short, clip, long_clip = tmp / "warm.wav", tmp / "clip.wav", tmp / "long.wav"
    sf.write(short, _speechy(2.0, 44100), 44100)
    sf.write(clip, _speechy(args.seconds, 44100), 44100)

    model, config, _ = _build({})  # memory first, before any bigger model was loaded
    sf.write(long_clip, _speechy(args.long_minutes * 60, 44100, seed=1), 44100)
    _time_request(model, config, short, 2.0)
    if _reset_peak():
        before = _rss_now_mib()
        elapsed, cpu = _time_request(model, config, long_clip, args.long_minutes * 60)
        peak = _rss_peak_mib()
        print(f"log-mel, {args.long_minutes:g} min audio: {elapsed:.1f} s wall "
              f"({args.long_minutes * 60 / elapsed:.1f}x real time, process CPU {cpu:.1f} s); "
              f"peak RSS {peak:.0f} MiB "
              f"(+{peak - before:.0f} MiB over the {before:.0f} MiB before the request)")
    else:
        print("peak RSS: cannot reset the peak mark (/proc/self/clear_refs) on this system")
    del model

    paths = [("log-mel (default_arch)", {})]
    try:
        import transformers  # noqa: F401

        paths.append(("wav2vec2-base", {"audio_encoder": "wav2vec2", "wav2vec2_config": {}}))
    except ImportError:
        print("wav2vec2 path: SKIPPED, the 'transformers' package is not installed "
              "(install it with: .venv/bin/pip install 'transformers>=4.40', or the "
              "'[official]' extra)")
    for label, overrides in paths:
        model, config, n_params = _build(overrides)
        _time_request(model, config, short, 2.0)  # warm-up: lazy inits, allocator
        elapsed, cpu = min(_time_request(model, config, clip, args.seconds) for _ in range(2))
        print(f"{label:24s} {n_params / 1e6:6.2f} M params  {args.seconds:.0f} s audio in "
              f"{elapsed:6.2f} s wall = {args.seconds / elapsed:6.1f}x real time "
              f"(process CPU {cpu:.2f} s)", flush=True)
        del model

    for p in (short, clip, long_clip):
        p.unlink(missing_ok=True)
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
