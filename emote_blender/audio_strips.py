"""Sound strips and their timing: which part of which file plays on which scene frames.

The timing maths is plain Python (tested without Blender); the strip lookup uses bpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StripTiming:
    """Where a strip's result goes: `frame_count` frames starting at scene frame `first_frame`."""

    first_frame: int
    frame_count: int
    fps: float
    audio_start_s: float
    audio_end_s: float | None  # None: to the end of the file


def scene_fps(fps: int, fps_base: float) -> float:
    """Blender's real frame rate (29.97 is fps=30, fps_base=1.001)."""
    return float(fps) / float(fps_base)


def strip_timing(frame_start: float, frame_final_start: float, frame_final_end: float,
                 fps: float, sound_offset_s: float = 0.0, trimmed_end: bool = True) -> StripTiming:
    """Timing of a sound strip whose untrimmed content starts at `frame_start`.

    The strip plays scene frames [frame_final_start, frame_final_end); scene frame f hears the
    file at (f - frame_start) / fps + sound_offset_s seconds. Frame 0 of the result is the
    first whole frame the strip covers.
    """
    if fps <= 0:
        raise ValueError("scene frame rate must be positive")
    first = int(math.ceil(frame_final_start - 1e-6))
    last = int(math.ceil(frame_final_end - 1e-6))  # exclusive
    count = last - first
    if count <= 0:
        raise ValueError("the sound strip covers no whole frame")
    start_s = max(0.0, (first - frame_start) / fps + sound_offset_s)
    end_s = (last - frame_start) / fps + sound_offset_s if trimmed_end else None
    return StripTiming(first, count, fps, start_s, end_s)


def frames_of(timing: StripTiming):
    """Scene frame numbers of the result's frames."""
    import numpy as np

    return np.arange(timing.first_frame, timing.first_frame + timing.frame_count, dtype=np.float64)


# --- bpy side -------------------------------------------------------------------------------

def sequencer_scene(context):
    """The scene holding the sequencer strips (5.0 may keep it apart from the 3D scene)."""
    return getattr(context, "sequencer_scene", None) or context.scene


def sound_strips(scene) -> list:
    """All sound strips of the scene's sequencer (top level and inside meta strips)."""
    from . import blender_compat

    ed = scene.sequence_editor
    if ed is None:
        return []
    return [s for s in blender_compat.all_strips(ed) if s.type == "SOUND"]


def default_strip(scene):
    """The active sound strip, else the first selected one, else the only one, else None."""
    strips = sound_strips(scene)
    ed = scene.sequence_editor
    active = getattr(ed, "active_strip", None) if ed else None
    if active is not None and active.type == "SOUND":
        return active
    selected = [s for s in strips if s.select]
    if selected:
        return selected[0]
    return strips[0] if len(strips) == 1 else None


def strip_audio_path(strip) -> Path:
    """Absolute path of the file a sound strip plays."""
    import bpy

    return Path(bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)).resolve()


def timing_of(strip, scene) -> StripTiming:
    """StripTiming for a Blender sound strip in `scene`."""
    fps = scene_fps(scene.render.fps, scene.render.fps_base)
    return strip_timing(strip.frame_start, strip.frame_final_start, strip.frame_final_end, fps,
                        float(getattr(strip, "sound_offset", 0.0)),
                        trimmed_end=strip.frame_offset_end > 0)
