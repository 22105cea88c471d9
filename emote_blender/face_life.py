"""Blinks, gaze and head motion on the rig, and the per-region strengths applied at bake time.

A take keeps the runtime's raw result on its shape-key action (custom property `emote_raw`,
saved with the .blend), so the strength controls re-bake the take's keys from it without
running the runtime again, and the result is the same whatever was tuned before.

- head: the result's `head` axis-angle goes to the neck bone (else a bone named like "head");
- gaze: the result's `gaze` (yaw, pitch) goes to the two eye bones, or to eyeLook shape keys on
  heads without eye bones;
- blinks are already the eyeBlink_L/R channels of `exp`, baked like any other shape key.
A track that is switched off is all zero and is baked as such (rest pose keys), so switching
between takes never leaves the eyes or head where another take put them.
"""

from __future__ import annotations

import numpy as np

from . import blender_compat, channels, heads
from ..model_runtime import strengths as strength_controls
from ..model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD

RAW_PROP = "emote_raw"
BLINKS = ("eyeBlink_L", "eyeBlink_R")
EYE_LOOK_FULL_RAD = np.radians(30.0)  # an eyeLook key at 1 turns the eye this far
STRENGTH_PROPS = ("upper_face", "lower_face", "lip_closure", "smoothing")


def head_bone(bone_names: list[str]) -> str | None:
    """The bone that turns the head: `neck` (FLAME and the open head), else one named head."""
    low = {b.lower(): b for b in bone_names}
    for want in ("neck", "head"):
        if want in low:
            return low[want]
    for b in bone_names:
        if "head" in b.lower() or "neck" in b.lower():
            return b
    return None


def _side(name: str) -> str | None:
    n = name.lower()
    if "left" in n or n.endswith((".l", "_l", "-l")) or n.startswith(("l_", "l.")):
        return "L"
    if "right" in n or n.endswith((".r", "_r", "-r")) or n.startswith(("r_", "r.")):
        return "R"
    return None


def eye_bones(bone_names: list[str]) -> dict[str, str]:
    """{'L': left eye bone, 'R': right eye bone} (both or neither)."""
    found: dict[str, str] = {}
    for b in bone_names:
        if "eye" in b.lower() and "lid" not in b.lower() and "brow" not in b.lower():
            side = _side(b)
            if side and side not in found:
                found[side] = b
    return found if len(found) == 2 else {}


def eye_look_keys(shape_key_names: list[str]) -> dict[str, str]:
    """eyeLook{In,Out,Up,Down}_{L,R} keys of an ARKit head, by canonical name (e.g. 'inL')."""
    keys = {channels.normalise(k): k for k in shape_key_names}
    out = {}
    for d in ("in", "out", "up", "down"):
        for side, word in (("L", "left"), ("R", "right")):
            k = keys.get(f"eyelook{d}{word}")
            if k:
                out[d + side] = k
    return out if len(out) == 8 else {}


def gaze_axis_angles(gaze: np.ndarray) -> np.ndarray:
    """(T, 2) yaw/pitch -> (T, 3) model-space axis-angles: turn about +y by yaw, then raise the
    line of sight (+z) toward +y by pitch (a rotation about -x)."""
    g = np.asarray(gaze, dtype=np.float64)
    yaw, pitch = g[:, 0] / 2, -g[:, 1] / 2
    # q = q_y(yaw) * q_x(-pitch), each (w, x, y, z)
    w = np.cos(yaw) * np.cos(pitch)
    x = np.cos(yaw) * np.sin(pitch)
    y = np.sin(yaw) * np.cos(pitch)
    z = -np.sin(yaw) * np.sin(pitch)
    vec = np.stack([x, y, z], axis=1)
    s = np.linalg.norm(vec, axis=1, keepdims=True)
    angle = 2 * np.arctan2(s, w[:, None])
    return vec * np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)


def eye_look_values(gaze: np.ndarray) -> dict[str, np.ndarray]:
    """eyeLook key values from yaw/pitch: to the character's left the left eye looks out and the
    right eye in; 1 at EYE_LOOK_FULL_RAD."""
    g = np.asarray(gaze, dtype=np.float64) / EYE_LOOK_FULL_RAD
    left, right = np.clip(g[:, 0], 0, 1), np.clip(-g[:, 0], 0, 1)
    up, down = np.clip(g[:, 1], 0, 1), np.clip(-g[:, 1], 0, 1)
    return {"outL": left, "inR": left, "inL": right, "outR": right,
            "upL": up, "upR": up, "downL": down, "downR": down}


def quaternion_path(bone: str) -> str:
    return f'pose.bones["{bone}"].rotation_quaternion'


def appended_blinks(names: list[str]) -> bool:
    """Whether a result's last two channels are blinks the runtime appended to a FLAME model's
    own channels (model_runtime.alive.combine_blinks), rather than an ARKit model's."""
    return (list(names[-2:]) == list(BLINKS) and len(names) > 2
            and all(channels.normalise(n).startswith("exp") for n in names[:-2]))


def retarget(obj, result: dict, cmap: channels.ChannelMap):
    """retargeting.retarget_if_needed with the appended blinks held aside (the source head's
    basis has no such channels) and put back after: onto the target's eyeBlink keys when it has
    them (the larger of the two), else still as extra channels."""
    from . import bake, retargeting
    from ..model_runtime import alive

    def match(names):
        return bake.channel_map_for(obj, names)

    names = [str(n) for n in result["exp_names"]]
    if not appended_blinks(names):
        return retargeting.retarget_if_needed(obj, result, cmap, match)
    blink = np.asarray(result["exp"])[:, -1]
    inner = dict(result, exp=np.asarray(result["exp"])[:, :-2], exp_names=names[:-2])
    out, _cmap, note = retargeting.retarget_if_needed(obj, inner, match(names[:-2]), match)
    if out is inner:
        return result, cmap, note
    exp, out_names = alive.combine_blinks(out["exp"], [str(n) for n in out["exp_names"]],
                                          blink)
    out = dict(out, exp=exp, exp_names=out_names)
    return out, match(out_names), note


def curve_values(obj, raw: dict, strengths: dict | None) -> list[tuple]:
    """Every curve a take of the raw result has on `obj`, as bake.bake_take writes them:
    (target 'key' or 'rig', data path, index, values (T,)). Shape keys (one-to-one, jawOpen,
    mixes), jaw bone, then head and gaze. Retargeted first when bake_take would, then tuned."""
    from . import bake

    cmap = bake.channel_map_for(obj, raw["exp_names"])
    result, cmap, _note = retarget(obj, raw, cmap)
    result = tuned(obj, result, strengths)
    from . import mouth_close  # as bake_take: mouthClose within jawOpen

    result = mouth_close.capped(obj, result, cmap)
    exp, jaw = result["exp"], result["jaw"]
    out: list[tuple] = []
    jaw_open = channels.jaw_to_open(jaw[:, 0], JAW_OPEN_FULL_RAD)
    for kname, values in channels.key_values(cmap, exp, jaw_open):
        out.append(("key", f'key_blocks["{kname}"].value', 0, values))
    rig = heads.find_rig(obj) if cmap.jaw_bone else None
    if rig is not None:
        quat = bake.jaw_quaternions(jaw, heads.bone_rest_matrix(rig, cmap.jaw_bone))
        out += [("rig", quaternion_path(cmap.jaw_bone), i, quat[:, i]) for i in range(4)]
    return out + extra_curve_values(obj, rig, result)


def extra_curve_values(obj, rig, result: dict) -> list[tuple]:
    """The head and gaze curves of a take (see curve_values)."""
    from . import bake

    out: list[tuple] = []
    n = result["exp"].shape[0]
    head = np.asarray(result.get("head", np.zeros((n, 3))), dtype=np.float64)
    gaze = np.asarray(result.get("gaze", np.zeros((n, 2))), dtype=np.float64)
    bones = [b.name for b in rig.data.bones] if rig is not None else []
    hb = head_bone(bones)
    if hb:
        quat = bake.jaw_quaternions(head, heads.bone_rest_matrix(rig, hb))
        out += [("rig", quaternion_path(hb), i, quat[:, i]) for i in range(4)]
    eyes = eye_bones(bones)
    if eyes:
        aa = gaze_axis_angles(gaze)
        for bone in (eyes["L"], eyes["R"]):
            quat = bake.jaw_quaternions(aa, heads.bone_rest_matrix(rig, bone))
            out += [("rig", quaternion_path(bone), i, quat[:, i]) for i in range(4)]
        return out
    looks = eye_look_keys(heads.shape_key_names(obj))
    for which, values in eye_look_values(gaze).items() if looks else ():
        out.append(("key", f'key_blocks["{looks[which]}"].value', 0, values))
    return out


def write_extras(obj, rig, key, writer, rig_writer, frames: np.ndarray, result: dict) -> None:
    """Bake head and gaze into a new take (bake.bake_take calls this with its ActionWriters)."""
    from . import bake

    for target, path, index, values in extra_curve_values(obj, rig, result):
        if target == "rig":
            rig.pose.bones[path.split('"')[1]].rotation_mode = "QUATERNION"
            curves = rig_writer.fcurves_for(rig)
        else:
            curves = writer.fcurves_for(key)
        bake.write_curve(curves, path, index, frames, values)


def store_raw(action, result: dict) -> None:
    """Keep the untuned result on the take's action (arrays as float32 ID properties)."""
    n = int(result["exp"].shape[0])
    raw = {"fps": float(result["fps"]), "frames": n, "exp_names": "\n".join(result["exp_names"]),
           "head_id": str(result.get("head_id", "")), "model_id": str(result.get("model_id", ""))}
    for k, width in (("exp", len(result["exp_names"])), ("jaw", 3), ("head", 3), ("gaze", 2)):
        arr = np.asarray(result.get(k, np.zeros((n, width))), dtype=np.float32).reshape(-1)
        raw[k] = arr
    action[RAW_PROP] = raw


def load_raw(action) -> dict | None:
    """The result stored by store_raw, or None (a take from before, or not EMOTE's)."""
    raw = action.get(RAW_PROP) if action is not None else None
    if raw is None:
        return None
    n = int(raw["frames"])
    names = [s for s in str(raw["exp_names"]).split("\n") if s]
    out = {"fps": float(raw["fps"]), "exp_names": names, "head_id": str(raw.get("head_id", "")),
           "model_id": str(raw.get("model_id", ""))}
    for k, width in (("exp", len(names)), ("jaw", 3), ("head", 3), ("gaze", 2)):
        out[k] = np.asarray(raw[k], dtype=np.float32).reshape(n, width)
    return out


def upper_shares(obj, exp_names: list[str]) -> dict[str, float] | None:
    """For channels whose name says no region (FLAME `exp###`): the share of each shape key's
    vertex motion above the split between the eyes and the mouth (halfway between the eye bones
    and the centre of the jaw's skinned vertices, about the nose). None without such a rig."""
    unknown = [n for n in exp_names if strength_controls.region_of(n) is None]
    key = obj.data.shape_keys if obj.type == "MESH" else None
    rig = heads.find_rig(obj)
    if not unknown or key is None or rig is None:
        return None
    bones = [b.name for b in rig.data.bones]
    eyes = eye_bones(bones)
    jaw = next((b for b in bones if b.lower() == "jaw"), None)
    group = obj.vertex_groups.get(jaw) if jaw else None
    if not eyes or group is None:
        return None
    n = len(obj.data.vertices)
    basis = np.empty(3 * n, dtype=np.float64)
    key.reference_key.data.foreach_get("co", basis)
    basis = basis.reshape(n, 3)
    jaw_verts = [v.index for v in obj.data.vertices
                 if any(g.group == group.index and g.weight > 0.5 for g in v.groups)]
    if not jaw_verts:
        return None
    eye_z = np.mean([rig.data.bones[b].head_local[2] for b in eyes.values()])
    split = 0.5 * (eye_z + basis[jaw_verts, 2].mean())
    above = basis[:, 2] > split
    keys = {channels.normalise(kb.name): kb for kb in key.key_blocks[1:]}
    shares: dict[str, float] = {}
    co = np.empty(3 * n, dtype=np.float64)
    for name in unknown:
        kb = keys.get(channels.normalise(name))
        if kb is None:
            continue
        kb.data.foreach_get("co", co)
        d = np.linalg.norm(co.reshape(n, 3) - basis, axis=1)
        total = d.sum()
        if total > 0:
            shares[name] = float(d[above].sum() / total)
    return shares


def scene_strengths(scene=None) -> dict:
    """The panel's strength controls (neutral where the panel has none, e.g. scripts)."""
    import bpy

    s = getattr(scene or bpy.context.scene, "emote", None)
    return {k: float(getattr(s, k)) for k in STRENGTH_PROPS if hasattr(s, k)}


def alive_request(scene) -> dict:
    """The request's `alive` field from the panel's Face life settings."""
    s = scene.emote
    return {"blinks": float(s.blink_strength) if s.use_blinks else 0.0,
            "gaze": float(s.gaze_strength) if s.use_gaze else 0.0,
            "head_motion": float(s.head_motion_strength) if s.use_head_motion else 0.0,
            "seed": int(s.life_seed)}


def tuned(obj, result: dict, strengths: dict | None) -> dict:
    """`result` with the strength controls applied for this head."""
    if strength_controls.is_neutral(strengths):
        return result
    shares = upper_shares(obj, list(result["exp_names"]))
    return strength_controls.apply(result, strengths, shares)


def rebake(obj, take, strengths: dict | None) -> int:
    """Rewrite the values of `take`'s keys from its stored raw result with `strengths`; frames,
    curves, other takes and everything else stay. Returns how many curves were rewritten;
    raises ValueError when the take has no stored result."""
    raw = load_raw(take.action)
    if raw is None:
        raise ValueError(f"Take {take.name!r} was made before strengths could be re-applied; "
                         "Generate it again to tune it.")
    key = obj.data.shape_keys
    rig = heads.find_rig(obj)
    where = {"key": (key, take.action), "rig": (rig, take.rig_action or take.action)}
    lookup: dict[tuple, object] = {}
    for target, (id_data, act) in where.items():
        if id_data is None or act is None:
            continue
        slot = blender_compat.find_slot(act, id_data)
        for fc in blender_compat.action_fcurves(act, slot):
            lookup[(target, fc.data_path, fc.array_index)] = fc
    count = 0
    for target, path, index, values in curve_values(obj, raw, strengths):
        fc = lookup.get((target, path, index))
        if fc is None or len(fc.keyframe_points) != len(values):
            continue
        co = np.empty(2 * len(values), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        co[1::2] = values
        fc.keyframe_points.foreach_set("co", co)
        count += 1
    for id_data in {take.action, take.rig_action, key} - {None}:
        id_data.update_tag()  # the viewport shows the new values at once
    return count
