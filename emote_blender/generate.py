"""The Generate steps shared by the modal operator and the synchronous (background) path.

prepare() gathers the request from Blender data, start() hands it to the runtime client, and
finish() reads the result and bakes it as one new take. Failure anywhere leaves the scene as it
was: nothing is written into the scene before the result has been read and checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio_strips, bake, emotion_curve, face_life, runtime_client, runtime_job
from .runtime_request import build_request
from .runtime_result import read_result
from ..model_runtime.errors import EmoteInputError, RuntimeFailure


@dataclass
class Prepared:
    """Everything a Generate needs after leaving Blender: the request and where to bake it."""

    request: dict
    timing: audio_strips.StripTiming
    head_name: str
    strip_name: str
    label: str


def emotion_label(weights: np.ndarray) -> str:
    """'happy' or 'happy-sad': the dominant emotions in order of appearance."""
    seq: list[str] = []
    for idx in np.argmax(weights, axis=1):
        name = emotion_curve.EMOTIONS[int(idx)]
        if not seq or seq[-1] != name:
            seq.append(name)
    return "-".join(dict.fromkeys(seq)) if len(seq) <= 3 else f"{seq[0]}-mixed"


def prepare(scene, head_obj, strip, model: str, identity: str) -> Prepared:
    """Build the request for `strip` (in `scene`'s timeline) and the head object."""
    if head_obj is None or head_obj.type != "MESH":
        raise EmoteInputError("bad_request", "No head chosen. Pick a head mesh in the EMOTE "
                              "panel (or add one with 'Add FLAME head').")
    if strip is None or strip.type != "SOUND":
        raise EmoteInputError("bad_request", "No sound strip chosen. Add the dialogue to the "
                              "Video Sequencer and pick its strip in the EMOTE panel.")
    audio = audio_strips.strip_audio_path(strip)
    if not audio.is_file():
        raise EmoteInputError("missing_file", f"The strip's audio file is missing: {audio}. "
                              "Relink the sound strip to its file.")
    try:
        timing = audio_strips.timing_of(strip, scene)
    except ValueError as exc:
        raise EmoteInputError("bad_request", f"Strip {strip.name!r}: {exc}. Make the strip "
                              "at least one frame long.") from None
    frames = audio_strips.frames_of(timing)
    weights, intensity = emotion_curve.sample_emotion(scene, frames, timing.fps, head_obj)
    request = build_request(
        audio, timing.audio_start_s, timing.audio_end_s, timing.fps, timing.frame_count,
        model or "default", identity or None, weights, intensity, emotion_curve.EMOTIONS)
    if hasattr(getattr(scene, "emote", None), "use_blinks"):
        request["alive"] = face_life.alive_request(scene)  # blinks, gaze, head motion
    label = f"{strip.name} {emotion_label(weights)}"
    return Prepared(request, timing, head_obj.name, strip.name, label)


def finish(head_obj, prepared: Prepared, job: runtime_job.Job):
    """Read a finished job's result and bake it as a new take; return (take, channel map)."""
    if job.state != "done":
        raise job.error or RuntimeFailure("runtime_error", "The runtime failed.")
    result = read_result(job.out_path, prepared.timing.frame_count)
    info = {"strip": prepared.strip_name, "emotion": prepared.label}
    return bake.bake_take(head_obj, result, prepared.timing.first_frame, prepared.label, info)


def generate_sync(scene, head_obj, strip, model: str, identity: str, python: str,
                  work_dir: str | None = None, use_server: bool = False,
                  timeout_s: float = 600.0):
    """The whole Generate without timers (background mode, batch jobs, tests).

    Returns (take, channel map, job); raises EmoteInputError or RuntimeFailure and then the scene
    is unchanged. The caller pushes the undo step.
    """
    prepared = prepare(scene, head_obj, strip, model, identity)
    job = runtime_job.wait(runtime_client.start(prepared.request, python, work_dir,
                                                   use_server), timeout_s)
    take, cmap = finish(head_obj, prepared, job)
    return take, cmap, job


_CONFIGS: dict[tuple, dict] = {}  # (config path, mtime, size) -> its parsed config.json


def _checkpoint_config(model: str) -> dict:
    """A checkpoint folder's config.json ('default': the bundled model's), parsed again only when
    the file changed ({} when it cannot be read): the panel asks on every redraw."""
    if not model or model == "default":
        from ..model_runtime.checkpoints import default_model_dir  # stdlib-only module

        cfg = default_model_dir() / "config.json"
    else:
        cfg = Path(model) / "config.json"
    try:
        st = cfg.stat()
    except OSError:
        return {}
    key = (str(cfg), st.st_mtime_ns, st.st_size)
    if key not in _CONFIGS:
        try:
            data = json.loads(cfg.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        _CONFIGS[key] = data
    return _CONFIGS[key]


def checkpoint_styles(model: str) -> list[str]:
    """Speaking styles (identities) a checkpoint folder offers, read from its config.json."""
    try:
        return [str(s) for s in _checkpoint_config(model).get("conditions", {})
                .get("identities", [])]
    except (AttributeError, TypeError):
        return []


def checkpoint_channels(model: str) -> list[str]:
    """The expression channels a checkpoint's results carry (config.json's output exp_names)."""
    try:
        return [str(n) for n in _checkpoint_config(model).get("output", {}).get("exp_names", [])]
    except (AttributeError, TypeError):
        return []
