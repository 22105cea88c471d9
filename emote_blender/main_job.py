"""The main job (`./run demo`): headless Blender from audio to baked, exported animation.

Adds the default head and the dialogue as a sound strip, keyframes an emotion curve, runs
Generate, bakes the take, and writes `<out>/<name>.glb/.fbx/.blend`, a Workbench preview video
with the audio (front and three-quarter views side by side) and a PNG plot of the emotion curve
over the key mouth, brow and eye channels (drawn by the runtime with matplotlib; a runtime
without matplotlib gets a warning instead of the plot).

    ./run demo [--audio FILE] [--emotion neutral:0 happy:2 ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AUDIO = ROOT / "assets" / "dialogue" / "line_01.wav"
DEFAULT_EMOTION = ("neutral:0", "happy:2.0", "surprised:4.0")


@dataclass
class Outputs:
    """Where the main job wrote each output, and how long the steps took."""

    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


@contextmanager
def blender_chatter_to(log_path: Path | None):
    """Send Blender's own output (exporter and render progress, on fds 1 and 2) to a log file."""
    if log_path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def say(text: str) -> None:
    print(f"[emote] {text}", flush=True)


def parse_keys(items, what: str, value_type) -> list[tuple]:
    """'happy:2.0' items -> [(value, seconds)] sorted by time; a bare value means second 0."""
    from ..model_runtime.errors import EmoteInputError

    out = []
    for item in items:
        value, sep, sec = str(item).partition(":")
        try:
            out.append((value_type(value), float(sec) if sep else 0.0))
        except ValueError:
            raise EmoteInputError("bad_request", f"--{what} {item!r} is not NAME:SECONDS (for "
                                  f"example {'happy:2.0' if what == 'emotion' else '0.8:1.5'})."
                                  ) from None
    if any(sec < 0 for _v, sec in out):
        raise EmoteInputError("bad_request", f"--{what}: times must be 0 or more seconds.")
    return sorted(out, key=lambda vs: vs[1])


def emotion_name(text: str) -> str:
    """Canonical EMOTE emotion name (aliases like 'surprise' allowed)."""
    from ..model_runtime.conditions import EMOTIONS, emotion_index

    return EMOTIONS[emotion_index(text)]


def intensity_value(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise ValueError(text)
    return v


def pick_style(model: str, style: str | None) -> str:
    """The speaking style to use: the one asked for, else the model's first (checks the model)."""
    from ..model_runtime.checkpoints import load_config
    from ..model_runtime.errors import EmoteInputError

    identities = [str(i) for i in load_config(model)["conditions"]["identities"]]
    if style is None:
        return identities[0]
    if style not in identities:
        raise EmoteInputError("bad_request", f"Unknown speaking style {style!r}. This model "
                              f"offers: {', '.join(identities)}.")
    return style


def register_extension() -> None:
    """Register the extension's properties and operators from this checkout (idempotent)."""
    import bpy

    if hasattr(bpy.types.Scene, "emote"):
        return
    from .. import addon_ui

    addon_ui.register()


def set_fps(scene, fps: float) -> None:
    """Scene frame rate, fractional ones as Blender stores them (29.97 = 30 / 1.001)."""
    base = max(1, round(fps))
    scene.render.fps, scene.render.fps_base = int(base), base / fps


def load_head_model(head: str | None):
    from . import heads
    from ..model_runtime.heads.open_head import default_head_path

    return heads.load_head_file(head or default_head_path(), sys.executable)


def build_scene(args, head_model):
    """Empty scene with the head, the sound strip at frame 1 and the keyed emotion curve."""
    import bpy

    from . import blender_compat, heads, preview

    bpy.ops.wm.read_factory_settings(use_empty=True)
    register_extension()
    scene = bpy.context.scene
    set_fps(scene, args.fps)
    head, _rig = heads.build_head(head_model, collection=scene.collection)
    preview.colour_head(head, head_model)
    ed = scene.sequence_editor_create()
    strip = blender_compat.new_sound_strip(ed, Path(args.audio).stem, str(args.audio), 1, 1)
    ed.active_strip = strip
    scene.emote.head = head
    s = head.emote  # the head's own settings: strip, emotion curve
    s.strip_name, s.transition_s = strip.name, args.transition
    fps = scene.render.fps / scene.render.fps_base
    first = int(strip.frame_final_start)
    for name, sec in args.emotion:
        s.emotion = name.upper()
        head.keyframe_insert("emote.emotion", frame=first + sec * fps)
    for value, sec in args.intensity:
        s.intensity = value
        head.keyframe_insert("emote.intensity", frame=first + sec * fps)
    scene.frame_start = first
    scene.frame_end = int(strip.frame_final_end) - 1
    return scene, head, strip


def run(args) -> Outputs:
    """The whole main job; returns the output paths. Raises EmoteInputError/RuntimeFailure."""
    import bpy

    from . import curve_plot, export, generate, preview, runtime_client, runtime_job
    from .runtime_result import read_result

    out = Outputs()
    t0 = time.perf_counter()
    style = pick_style(args.model, args.style)  # fails early: no default model, bad folder
    head_model = load_head_model(args.head)
    scene, head, strip = build_scene(args, head_model)
    out.timings["scene"] = time.perf_counter() - t0

    t = time.perf_counter()
    python = os.environ.get("EMOTE_RUNTIME_PYTHON") or sys.executable
    prepared = generate.prepare(scene, head, strip, args.model, style)
    say(f"Generate: {Path(args.audio).name}, {prepared.timing.frame_count} frames, model "
        f"{Path(args.model).name}, style {style!r}")
    dest, name = Path(args.out).resolve(), args.name
    with tempfile.TemporaryDirectory(prefix="emote_main_job_") as work:
        job = runtime_job.wait(runtime_client.start(prepared.request, python, work,
                                                       use_server=False), args.timeout)
        take, cmap = generate.finish(head, prepared, job)
        result = read_result(job.out_path, prepared.timing.frame_count)
        out.timings["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        dest.mkdir(parents=True, exist_ok=True)
        plot, warning = curve_plot.draw(
            python, job.out_path, prepared.request, dest / f"{name}_curves.png", work,
            curve_plot.labels_for(cmap, result["exp_names"]), keys=args.emotion,
            title=f"{name}: emotion curve and key channels",
            first_frame=prepared.timing.first_frame)
        out.timings["plot"] = time.perf_counter() - t
    if plot is not None:
        out.files["plot"] = plot
    else:
        say(f"warning: no curve plot: {warning}")
    print(f"[emote] baked take {take.name!r}: {prepared.timing.frame_count} frames at "
          f"{prepared.timing.fps:g} fps, {len(cmap.shape_keys)} shape-key channels"
          + (f", jaw bone {cmap.jaw_bone!r}" if cmap.jaw_bone else ""), flush=True)
    if cmap.unmatched:
        print(f"[emote] channels without a target on this head: {', '.join(cmap.unmatched)}")
    if cmap.retarget:
        print(f"[emote] {cmap.retarget}")
    if cmap.unknown_keys:
        print(f"[emote] shape keys left alone (name not recognised): "
              f"{', '.join(cmap.unknown_keys)}")

    log = None if args.verbose else dest / f"{name}_blender.log"
    if log is not None:
        log.unlink(missing_ok=True)
    t = time.perf_counter()
    say("exporting glTF and FBX")
    with blender_chatter_to(log):
        out.files["glTF"] = export.export_gltf(bpy.context, head, dest / f"{name}.glb")
        out.files["FBX"] = export.export_fbx(bpy.context, head, dest / f"{name}.fbx")
    out.timings["export"] = time.perf_counter() - t

    t = time.perf_counter()
    views = ("front",) if args.front_only else tuple(preview.VIEWS)
    preview.setup_camera(scene, head, args.size, views=views)
    first = prepared.timing.first_frame
    last = first + prepared.timing.frame_count - 1
    if args.preview_frames is not None:
        last = min(last, first + max(args.preview_frames, 1) - 1)
    scene.frame_set(first)
    blend = dest / f"{name}.blend"
    with blender_chatter_to(log):
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
    out.files["Blender file"] = blend
    out.timings["save"] = time.perf_counter() - t
    if not args.no_video:
        t = time.perf_counter()
        shown = " and ".join(v.replace("_", "-") for v in views)
        say(f"rendering the preview ({last - first + 1} frames, {shown} view"
            f"{'s' if len(views) > 1 else ''}, {scene.render.resolution_x} x {args.size} px "
            "each, Workbench)")
        with blender_chatter_to(log):
            out.files["preview"] = preview.render_video(
                scene, dest / f"{name}_preview.mp4", first, last, prepared.request["audio"],
                prepared.request["audio_start_s"])
        out.timings["preview"] = time.perf_counter() - t
    out.timings["total"] = time.perf_counter() - t0
    if log is not None:
        out.files["Blender log"] = log
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./run demo", description="Headless Blender: dialogue audio to a baked, exported "
        "talking head with an emotion curve, a preview video and a plot.")
    p.add_argument("--audio", default=str(DEFAULT_AUDIO),
                   help="dialogue audio file (default: assets/dialogue/line_01.wav)")
    p.add_argument("--emotion", nargs="+", default=list(DEFAULT_EMOTION), metavar="NAME:SECONDS",
                   help="emotion keyframes, seconds from the start of the line (default: "
                        "neutral:0 happy:2.0 surprised:4.0). Names: neutral, happy, sad, "
                        "surprised, fear, disgusted, angry, contempt")
    p.add_argument("--intensity", nargs="+", default=["0.7"], metavar="VALUE[:SECONDS]",
                   help="emotion intensity 0..1, one value or keyframes like 0.3:0 0.9:4 "
                        "(default: 0.7)")
    p.add_argument("--transition", type=float, default=0.4, metavar="S",
                   help="seconds over which an emotion change blends (default: 0.4)")
    p.add_argument("--model", default="default", metavar="default|DIR",
                   help="'default' (the bundled model) or a checkpoint folder")
    p.add_argument("--style", default=None, help="speaking style (default: the model's first)")
    p.add_argument("--head", default=None, metavar="FILE",
                   help="head .npz or FLAME .pkl (default: the bundled open head)")
    p.add_argument("--fps", type=float, default=25.0, help="scene frame rate (default: 25)")
    p.add_argument("--out", default=str(ROOT / "out"), help="output folder (default: out/)")
    p.add_argument("--name", default=None, help="output file name (default: the audio's name)")
    p.add_argument("--size", type=int, default=512,
                   help="height of the preview video in px (512); the front and three-quarter "
                        "views stand side by side, each as wide as the head needs")
    p.add_argument("--front-only", action="store_true",
                   help="render only the front view in the preview (half the render time)")
    p.add_argument("--preview-frames", type=int, default=None, metavar="N",
                   help="render only the first N frames of the preview (quick checks)")
    p.add_argument("--no-video", action="store_true", help="skip the preview video")
    p.add_argument("--timeout", type=float, default=600.0, help="runtime time limit in seconds")
    p.add_argument("--verbose", action="store_true",
                   help="show Blender's own export and render output (default: a log file)")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..model_runtime.errors import EmoteError, EmoteInputError

    args = build_parser().parse_args(argv)
    try:
        args.audio = str(Path(args.audio).expanduser().resolve())
        if not Path(args.audio).is_file():
            raise EmoteInputError("missing_file", f"Audio file not found: {args.audio}. Give an "
                                  "existing WAV/FLAC/OGG/MP3 with --audio.")
        args.emotion = [(emotion_name(n), s) for n, s in parse_keys(args.emotion, "emotion", str)]
        args.intensity = parse_keys(args.intensity, "intensity", intensity_value)
        args.name = args.name or Path(args.audio).stem
        if args.model != "default":
            args.model = str(Path(args.model).expanduser().resolve())
        out = run(args)
    except EmoteError as exc:
        print(f"error ({exc.kind}): {exc.message}", file=sys.stderr, flush=True)
        return 2
    print("\nEMOTE main job finished in "
          f"{out.timings['total']:.1f} s (" + ", ".join(
              f"{k} {v:.1f} s" for k, v in out.timings.items() if k != "total") + "). Outputs:")
    for label, path in out.files.items():
        print(f"  {label:<13} {path}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if __package__ == "emote_blender":  # `python -m emote_blender.main_job`: outside the package
        raise SystemExit("error: start it with ./run demo; the extension's parts import "
                         "each other as one package, emote.emote_blender.main_job here")
    raise SystemExit(main())
