"""Time to sample the emotion curve over a strip: active action, plain NLA strip, and a driver.

Runs headless with the bpy wheel: `.venv/bin/python bench/emotion_sample_speed.py [FRAMES]`
(default 1800 = one minute at 30 fps). The scene holds a 32k-vertex mesh with 40 animated shape
keys, the cost that stepping the timeline pays each frame; emotion keys are read from the active
action, then from the same keys pushed into an NLA strip, then with a driver on intensity (which
makes emotion_curve step the scene through the frames).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

import bpy  # noqa: E402


class _Settings(bpy.types.PropertyGroup):  # the panel's emotion settings, without the add-on
    emotion: bpy.props.EnumProperty(items=[("NEUTRAL", "Neutral", ""), ("HAPPY", "Happy", ""),
                                           ("SAD", "Sad", "")])
    intensity: bpy.props.FloatProperty(min=0.0, max=1.0, default=0.5)
    transition_s: bpy.props.FloatProperty(default=0.3)


def _heavy_head(frames: np.ndarray) -> None:
    from emote.emote_blender import blender_compat
    from emote.emote_blender.bake import write_curve

    bpy.ops.mesh.primitive_uv_sphere_add(segments=128, ring_count=64)
    obj = bpy.context.object
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.subdivide(number_cuts=1)
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.shape_key_add(name="Basis")
    rng = np.random.default_rng(0)
    co = np.zeros(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    key = obj.data.shape_keys
    act = bpy.data.actions.new("take")
    writer = blender_compat.ActionWriter(act)
    curves = writer.fcurves_for(key)
    for i in range(40):
        kb = obj.shape_key_add(name=f"k{i}")
        kb.data.foreach_set("co", co + rng.normal(0, 0.01, co.size).astype(np.float32))
        write_curve(curves, f'key_blocks["k{i}"].value', 0, frames, rng.uniform(0, 1, len(frames)))
    blender_compat.assign(key, act)  # with its slot on 4.4+
    print(f"head: {len(obj.data.vertices)} vertices, 40 animated shape keys")


def main() -> int:
    n = int(sys.argv[-1]) if sys.argv[-1].isdigit() else 1800
    bpy.utils.register_class(_Settings)
    bpy.types.Scene.emote = bpy.props.PointerProperty(type=_Settings)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    from emote.emote_blender import emotion_curve as ec

    scene = bpy.context.scene
    frames = np.arange(1, n + 1, dtype=np.float64)
    _heavy_head(frames)
    scene.emote.emotion = "HAPPY"
    scene.keyframe_insert("emote.emotion", frame=10)
    scene.emote.emotion = "SAD"
    scene.keyframe_insert("emote.emotion", frame=n // 2)

    def timed(label: str) -> None:
        t = time.perf_counter()
        ec.sample_emotion(scene, frames, 30.0, scene)  # its own settings
        dt = time.perf_counter() - t
        print(f"{label:<28} {n} frames: {dt:8.3f} s = {dt / n * 1e6:9.1f} us/frame")

    timed("active action (F-curve)")
    ad = scene.animation_data
    ad.nla_tracks.new().strips.new("emotion", 10, ad.action)
    ad.action = None
    timed("NLA strip (F-curves)")
    drv = scene.driver_add("emote.intensity").driver
    drv.type, drv.expression = "SCRIPTED", "frame / 1000"
    timed("driver (steps the scene)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
