"""Headless Blender batch: bake many results onto one head and export one glTF per line.

Inputs are result folders / RESULT .npz files (from `python -m model_runtime batch`), or audio
inputs (files, folders, .txt lists, .csv sheets) that are first generated with that command into
`<out>/results`. Lines already exported are skipped, so an interrupted batch resumes.

    ./run batch-job RESULTS_DIR_or_INPUTS... --out DIR [--head FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


def split_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """(RESULT .npz files, inputs for the runtime's batch command)."""
    results: list[Path] = []
    audio: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_file() and p.suffix.lower() == ".npz":
            results.append(p)
        elif p.is_dir() and any(p.glob("*.npz")) and not any(
                f.suffix.lower() in AUDIO_SUFFIXES for f in p.rglob("*")):
            results.extend(sorted(p.glob("*.npz")))
        else:
            audio.append(item)
    return results, audio


def generate_results(audio_inputs: list[str], out: Path, args) -> list[Path]:
    """Run `python -m model_runtime batch` for audio inputs; return the results it has."""
    from .runtime_env import runtime_env

    res_dir = out / "results"
    python = os.environ.get("EMOTE_RUNTIME_PYTHON") or sys.executable
    cmd = [python, "-m", "model_runtime", "batch", *audio_inputs, "--out", str(res_dir),
           "--emotion", args.emotion, "--intensity", str(args.intensity), "--fps", str(args.fps),
           "--model", args.model]
    if args.style:
        cmd += ["--style", args.style]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    proc = subprocess.run(cmd, env=runtime_env(python), stdout=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 3):  # 3: some lines failed, the rest are there
        raise SystemExit(proc.returncode)
    return sorted(res_dir.glob("*.npz"))


def bake_and_export(results: list[Path], out: Path, head_file: str | None,
                    fmt: str = "glb") -> list[dict]:
    """Bake each result onto one head as a take, export it, drop the take; one row per line."""
    import bpy

    from . import bake, export, heads, preview, takes
    from .runtime_result import read_result
    from .main_job import load_head_model, register_extension, set_fps

    bpy.ops.wm.read_factory_settings(use_empty=True)
    register_extension()
    scene = bpy.context.scene
    head_model = load_head_model(head_file)
    head, _rig = heads.build_head(head_model, collection=scene.collection)
    preview.colour_head(head, head_model)
    writer = export.export_fbx if fmt == "fbx" else export.export_gltf
    rows = []
    for path in results:
        name = path.stem
        dest = out / f"{name}.{fmt}"
        if dest.exists():
            rows.append({"name": name, "status": "skipped", "out": str(dest)})
            continue
        t = time.perf_counter()
        try:
            with np.load(path, allow_pickle=False) as z:
                n = int(z["exp"].shape[0])
            result = read_result(path, n)
            set_fps(scene, result["fps"])
            take, cmap = bake.bake_take(head, result, 1, name, {"strip": name})
            try:
                writer(bpy.context, head, dest)
            finally:
                takes.delete(head, take.name)
            rows.append({"name": name, "status": "done", "out": str(dest), "frames": n,
                         "unmatched": len(cmap.unmatched),
                         "seconds": round(time.perf_counter() - t, 3)})
        except Exception as exc:  # a broken line (damaged .npz, odd shapes) must not stop the batch
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            print(f"line {name!r} failed: {msg}", file=sys.stderr, flush=True)
            rows.append({"name": name, "status": "error", "message": msg})
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="./run batch-job",
                                description="Bake results (or generate them from audio) onto "
                                            "a head and export one file per line.")
    p.add_argument("inputs", nargs="+", help="result folders or .npz files, or audio files, "
                                             "folders, .txt lists, .csv sheets")
    p.add_argument("--out", required=True, help="folder for the exported files")
    p.add_argument("--head", default=None, help="head .npz or FLAME .pkl (default: open head)")
    p.add_argument("--format", choices=("glb", "gltf", "fbx"), default="glb")
    g = p.add_argument_group("when generating from audio")
    g.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    g.add_argument("--emotion", default="neutral", help="emotion where a line gives none")
    g.add_argument("--intensity", type=float, default=0.7, help="0..1 where a line gives none")
    g.add_argument("--style", default=None, help="speaking style where a line gives none")
    g.add_argument("--fps", type=float, default=30.0, help="frame rate (default: 30)")
    g.add_argument("--jobs", type=int, default=None, help="runtime worker processes")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..model_runtime.errors import EmoteInputError

    args = build_parser().parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results, audio = split_inputs(args.inputs)
    if audio:
        results += generate_results(audio, out, args)
    if not results:
        print("error (bad_request): No results to bake. Give result folders/.npz files or "
              "audio inputs that generate.", file=sys.stderr)
        return 2
    try:
        rows = bake_and_export(results, out, args.head, args.format)
    except EmoteInputError as exc:
        print(f"error ({exc.kind}): {exc.message}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r["status"] == "error"]
    summary = {"event": "done", "out": str(out), "lines": len(rows),
               "exported": sum(r["status"] == "done" for r in rows),
               "skipped": sum(r["status"] == "skipped" for r in rows), "failed": len(failed),
               "seconds": round(time.perf_counter() - t0, 2)}
    from ..model_runtime.safe_write import write_text

    write_text(out / "batch_job_report.json", json.dumps(rows, indent=1))
    print(json.dumps(summary), flush=True)
    return 3 if failed else 0


if __name__ == "__main__":
    if __package__ == "emote_blender":  # `python -m emote_blender.batch_job`: outside the package
        raise SystemExit("error: start it with ./run batch-job; the extension's parts import "
                         "each other as one package, emote.emote_blender.batch_job here")
    raise SystemExit(main())
