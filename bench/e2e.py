"""Generate-to-keyframes time in headless Blender for a long line: cold and warm runtime.

Cold: a new runtime process (interpreter + torch start-up, model load, inference, bake). Warm:
the next Generates on the same `serve` process. Timed from the Generate call until the take's
keyframes are baked, as an animator waits for them.

    .venv/bin/python bench/e2e.py [--seconds 60] [--model default|DIR|random] [--repeats 3]

`--model random` (used when the bundled model is not installed) times a random-weight model of
the bundled architecture: the same amount of computation as the real one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "devpath"))  # this checkout as the package `emote`


def speech_like_wav(path: Path, seconds: float, sr: int = 16000) -> Path:
    """A buzzy tone with syllable-rate loudness and noise (stands in for speech)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * t))
    x = env * (0.4 * np.sign(np.sin(2 * np.pi * 140 * t)) + 0.1 * rng.standard_normal(t.size))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(np.clip(x * 16000, -32768, 32767).astype("<i2").tobytes())
    return path


def random_default_arch_model(folder: Path, python: str) -> Path:
    """A checkpoint with the bundled architecture and random weights (made by the runtime)."""
    import subprocess

    from emote.emote_blender.runtime_env import runtime_env

    code = ("import sys, torch; torch.manual_seed(0)\n"
            "from model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS as C\n"
            "from model_runtime.checkpoints import default_arch, make_config, build_model, "
            "save_checkpoint\n"
            "ids = ['style%d' % i for i in range(8)]\n"
            "cfg = make_config(default_arch(len(C) + 3, len(ids)), C, ids, 'open_head_v1',\n"
            "                  {'source': 'random weights for bench/e2e.py'})\n"
            "save_checkpoint(build_model(cfg), cfg, sys.argv[1])\n")
    subprocess.run([python, "-c", code, str(folder)], check=True, env=runtime_env())
    return folder


def one_generate(scene, head, strip, model, style, python, work, use_server) -> float:
    from emote.emote_blender import generate, runtime_client, runtime_job

    t = time.perf_counter()
    prepared = generate.prepare(scene, head, strip, model, style)
    job = runtime_job.wait(runtime_client.start(prepared.request, python, work, use_server))
    generate.finish(head, prepared, job)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--model", default=None, help="default, a folder, or random (see above)")
    ap.add_argument("--repeats", type=int, default=3, help="warm Generates to time")
    args = ap.parse_args(argv)

    import bpy

    from emote.emote_blender import blender_compat, heads, runtime_client
    from emote.emote_blender.main_job import (load_head_model, pick_style, register_extension,
                                        set_fps)
    from emote.model_runtime.checkpoints import default_model_dir

    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="emote_e2e_") as tmp:
        tmp = Path(tmp)
        model = args.model or ("default" if (default_model_dir() / "config.json").is_file()
                               else "random")
        if model == "random":
            model = str(random_default_arch_model(tmp / "random_default_arch", python))
        style = pick_style(model, None)
        wav = speech_like_wav(tmp / "line_60s.wav", args.seconds)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        register_extension()
        scene = bpy.context.scene
        set_fps(scene, args.fps)
        head, _rig = heads.build_head(load_head_model(None), collection=scene.collection)
        strip = blender_compat.new_sound_strip(scene.sequence_editor_create(), "line", str(wav),
                                               1, 1)
        head.emote.emotion = "HAPPY"
        runtime_client.shutdown_server()
        try:
            cold = one_generate(scene, head, strip, model, style, python, tmp, True)
            pid = runtime_client._SERVER.proc.pid
            warm = [one_generate(scene, head, strip, model, style, python, tmp, True)
                    for _ in range(args.repeats)]
            same = runtime_client._SERVER.proc.pid == pid
        finally:
            runtime_client.shutdown_server()
        oneshot = one_generate(scene, head, strip, model, style, python, tmp, False)
    frames = int(strip.frame_final_duration)
    report = {"audio_s": args.seconds, "frames": frames, "fps": args.fps,
              "model": args.model or Path(model).name, "cold_s": round(cold, 2),
              "warm_s": round(statistics.median(warm), 2), "warm_all_s": [round(w, 2) for w in warm],
              "one_shot_process_s": round(oneshot, 2), "warm_same_process": same}
    print(f"Generate -> keyframes, {args.seconds:g} s of audio ({frames} frames at "
          f"{args.fps:g} fps), headless Blender {bpy.app.version_string}:")
    print(f"  cold (new runtime process) {cold:6.2f} s   target < 6 s")
    print(f"  warm (same process)        {statistics.median(warm):6.2f} s   target < 1.5 s "
          f"(median of {len(warm)}; same process: {same})")
    print(f"  one-shot process fallback  {oneshot:6.2f} s")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
