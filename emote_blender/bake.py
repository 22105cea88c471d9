"""Write a runtime result into a new take: shape-key and jaw keyframes, in bulk, undoable.

Nothing in the scene changes until the result has been read and checked; if anything fails while
baking, everything this call created is removed again, so the scene is exactly as before.
"""

from __future__ import annotations

import numpy as np

from . import (blender_compat, channels, characters, face_life, heads, mapping,
                           takes)
from ..model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD

LINEAR = 1  # FCurve keyframe interpolation enum value of 'LINEAR'
# A result beyond these is refused before baking: FLAME expression coefficients stay within a
# few units (ARKit weights within 0..1), and a jaw never turns half a circle.
MAX_ABS_EXPRESSION = 50.0
MAX_JAW_RAD = 3.1416


def check_plausible(result: dict) -> None:
    """RuntimeFailure(bad_result) when a result's values are far outside any model's range
    (a broken or foreign model): baking them would wreck the head, so nothing is baked."""
    from ..model_runtime.errors import RuntimeFailure

    exp, jaw = np.asarray(result["exp"]), np.asarray(result["jaw"])
    peak_exp = float(np.abs(exp).max()) if exp.size else 0.0
    peak_jaw = float(np.linalg.norm(jaw, axis=1).max()) if jaw.size else 0.0
    if peak_exp > MAX_ABS_EXPRESSION or peak_jaw > MAX_JAW_RAD:
        raise RuntimeFailure(
            "bad_result", f"The result's values are far outside any model's range (expression "
            f"up to {peak_exp:.3g}, plausible at most {MAX_ABS_EXPRESSION:g}; jaw up to "
            f"{peak_jaw:.3g} rad, plausible at most {MAX_JAW_RAD:.3g}), so nothing was baked. "
            "The model is broken or not made for this runtime; choose another model.")


def jaw_quaternions(jaw_aa: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Model-space jaw axis-angles (T, 3) -> bone-local quaternions (T, 4) as (w, x, y, z)."""
    m = heads.TO_BLENDER.T @ rest  # bone-local axis = M^T model axis (M is a rotation)
    aa = np.asarray(jaw_aa, dtype=np.float64) @ m
    angle = np.linalg.norm(aa, axis=1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    return np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis], axis=1)


def write_curve(fcurves, data_path: str, index: int, frames: np.ndarray, values: np.ndarray):
    """One F-curve with a key per frame, written in bulk (no keyframe_insert)."""
    fc = fcurves.new(data_path, index=index)
    n = len(frames)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    fc.keyframe_points.foreach_set("co", co)
    # Linear keys, one per frame, already in order: no handle recalculation (fc.update) needed.
    fc.keyframe_points.foreach_set("interpolation", np.full(n, LINEAR, dtype=np.int32))
    return fc


def hold_at_rest(curves, playing: set[str], written: set[str], first_frame: float) -> list[str]:
    """Shape keys the animation playing before this take moved but the take does not drive get
    one key at 0 (rest) in the take: otherwise each would keep the value that animation left,
    which depends on the frame Blender last evaluated it at. Returns their data paths."""
    held = sorted(playing - written)
    for path in held:
        write_curve(curves, path, 0, np.array([first_frame]), np.zeros(1))
    return held


def _playing_shape_key_paths(key) -> set[str]:
    """Shape-key value paths the key's assigned action animates now (drivers excluded)."""
    if key is None:
        return set()
    ad = key.animation_data
    driven = {d.data_path for d in ad.drivers} if ad is not None else set()
    return {fc.data_path for fc in blender_compat.assigned_fcurves(key)
            if fc.data_path.startswith("key_blocks[") and fc.data_path.endswith("].value")
            and fc.data_path not in driven}


def channel_map_for(obj, exp_names: list[str]) -> channels.ChannelMap:
    """How a result's channels land on this head: name matching (channels.match_channels)
    under the head's mapping rows (mapping.apply_mapping)."""
    rig = heads.find_rig(obj)
    bones = [b.name for b in rig.data.bones] if rig is not None else []
    key = obj.data.shape_keys if obj.type == "MESH" else None
    ad = key.animation_data if key is not None else None
    driven = {d.data_path for d in ad.drivers} if ad is not None else set()
    names = [n for n in heads.shape_key_names(obj)  # keys a driver sets are not ours to key
             if f'key_blocks["{n}"].value' not in driven]
    cmap = channels.match_channels(exp_names, names, bones, JAW_OPEN_FULL_RAD)
    rows = characters.mapping_rows(obj)  # the head's own mapping editor rows, if any
    return mapping.apply_mapping(cmap, rows, list(exp_names), names) if rows else cmap


def bake_take(obj, result: dict, first_frame: int, label: str, info: dict | None = None,
              strengths: dict | None = None):
    """Bake `result` (runtime_result.read_result) onto head `obj` as a new take; return it.

    `strengths` (model_runtime.strengths; default: the scene panel's) tune the keys; the raw
    result is kept on the take so they can be re-applied (face_life.rebake)."""
    import bpy

    check_plausible(result)
    raw = result
    cmap = channel_map_for(obj, result["exp_names"])
    result, cmap, note = face_life.retarget(obj, result, cmap)
    cmap.retarget = note
    result = face_life.tuned(obj, result, face_life.scene_strengths() if strengths is None
                             else strengths)
    from . import mouth_close  # ARKit-sculpted heads: mouthClose within jawOpen

    result = mouth_close.capped(obj, result, cmap)
    key = obj.data.shape_keys
    rig = heads.find_rig(obj) if cmap.jaw_bone else None
    if key is None and rig is None:
        raise ValueError(f"{obj.name} has no shape keys and no jaw bone to animate")
    exp, jaw = result["exp"], result["jaw"]
    frames = first_frame + np.arange(exp.shape[0], dtype=np.float64)
    number = takes.next_number(obj)
    name = f"{label} take {number}"
    before = takes.snapshot_assignment(obj)
    playing = _playing_shape_key_paths(key)
    created: list = []
    kept: list = []
    try:
        action = bpy.data.actions.new(name)
        created.append(action)
        writer = blender_compat.ActionWriter(action)
        rig_writer = writer
        if rig is not None and not blender_compat.SLOTTED:
            rig_action = bpy.data.actions.new(name + " jaw")
            created.append(rig_action)
            rig_writer = blender_compat.ActionWriter(rig_action)
        if key is not None and (cmap.shape_keys or cmap.jaw_open_key or cmap.mixes):
            curves = writer.fcurves_for(key)
            jaw_open = channels.jaw_to_open(jaw[:, 0], JAW_OPEN_FULL_RAD)
            for kname, values in channels.key_values(cmap, exp, jaw_open):
                write_curve(curves, f'key_blocks["{kname}"].value', 0, frames, values)
        if rig is not None:
            quat = jaw_quaternions(jaw, heads.bone_rest_matrix(rig, cmap.jaw_bone))
            curves = rig_writer.fcurves_for(rig)
            path = f'pose.bones["{cmap.jaw_bone}"].rotation_quaternion'
            rig.pose.bones[cmap.jaw_bone].rotation_mode = "QUATERNION"
            for i in range(4):
                write_curve(curves, path, i, frames, quat[:, i])
        face_life.write_extras(obj, rig, key, writer, rig_writer, frames, result)
        if playing:  # after the extras: they may key eyeLook shape keys too
            curves = writer.fcurves_for(key)
            hold_at_rest(curves, playing, {fc.data_path for fc in curves}, frames[0])
        face_life.store_raw(action, raw)
        take = takes.add_take(obj, name, number, action, rig_writer.action if rig else None,
                              first_frame, key, rig, info or {})
        kept = takes.keep_user_animation(obj)  # the user's own keys outlive the switch
        takes.activate(obj, take)
        return take, cmap
    except Exception:
        takes.restore_assignment(obj, before)
        takes.undo_keep(kept)
        takes.forget(obj, name, created)
        for act in created:
            if act.name in bpy.data.actions:
                bpy.data.actions.remove(act)
        raise
