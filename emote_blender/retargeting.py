"""When a model's channels do not fit the head (a FLAME model on an ARKit character, the ARKit
open-head model on a FLAME head), carry the result over with `model_runtime.heads.retarget`.

The two expression bases come from what is at hand: the bundled open head for open-head models
and open-head characters; otherwise the mesh itself (its basis and recognised shape keys, turned
into the head-model frame), with the mouth landmarks from the object's `emote_landmarks` property
(name -> vertex index), read off its ARKit mouth shapes, or found from the mouth opening as for
FLAME files. A FLAME model's basis
is the FLAME head object in the file with the model's head id (Add FLAME head makes one).
"""

from __future__ import annotations

import json

import numpy as np

from . import channels, heads
from ..model_runtime.heads import retarget
from ..model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS
from ..model_runtime.heads.head_model import REQUIRED_LANDMARKS, HeadModel, load_head

RETARGET_BELOW = 0.5  # retarget when the head takes less than this share of the model's channels


def _open_head() -> HeadModel:
    from ..model_runtime.heads.open_head import default_head_path

    return load_head(default_head_path())


def _landmarks(obj, verts: np.ndarray, faces: np.ndarray, dirs: np.ndarray,
               names: list[str]) -> dict[str, int] | None:
    """The artist's `emote_landmarks`, else read off the ARKit mouth shapes, else the mouth hole."""
    stored = obj.get("emote_landmarks")
    if stored:
        marks = json.loads(stored) if isinstance(stored, str) else dict(stored)
        if all(n in marks for n in REQUIRED_LANDMARKS):
            return {n: int(marks[n]) for n in REQUIRED_LANDMARKS}
    marks = retarget.landmarks_from_arkit_shapes(verts, dirs, names)
    if marks is not None:
        return marks
    from ..model_runtime.heads.flame_pickle import find_mouth_landmarks

    try:
        return find_mouth_landmarks(verts, faces)
    except ValueError:
        return None


def head_model_of(obj, names: list[str] | None = None) -> HeadModel | None:
    """The expression basis of a Blender head mesh in the head-model frame, or None when it has no
    recognised shape keys or no findable mouth. Channels are named canonically (ARKit's Apple
    spelling, FLAME's `exp<n>`), or as `names` in that order when given (all must exist)."""
    if obj.get("emote_head_id") == _open_head_id() and names in (None, list(OPEN_HEAD_CHANNELS)):
        return _open_head()
    key = obj.data.shape_keys if obj.type == "MESH" else None
    if key is None:
        return None
    by_canon: dict[str, object] = {}
    for kb in key.key_blocks[1:]:
        role = channels.identify(kb.name)
        if role is not None and not role.preset and len(role.sources) == 1:
            by_canon.setdefault(role.sources[0][0], kb)
    wanted = [channels.canonical(n) for n in names] if names is not None else list(by_canon)
    if not wanted or any(c not in by_canon for c in wanted):
        return None
    mesh = obj.data
    n = len(mesh.vertices)
    rot = np.array(obj.matrix_world.to_3x3(), dtype=np.float64)
    rot /= np.maximum(np.linalg.norm(rot, axis=0, keepdims=True), 1e-12)  # rotation, no scale

    def coords(kb) -> np.ndarray:
        co = np.empty(3 * n, dtype=np.float32)
        kb.data.foreach_get("co", co)
        return (co.reshape(n, 3).astype(np.float64) @ rot.T) @ heads.TO_BLENDER

    base = coords(key.reference_key)
    mesh.calc_loop_triangles()
    tris = np.empty(3 * len(mesh.loop_triangles), dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", tris)
    faces = tris.reshape(-1, 3)
    dirs = np.stack([coords(by_canon[c]) - base for c in wanted], axis=2)
    marks = _landmarks(obj, base, faces, dirs, wanted)
    if marks is None:
        return None
    return HeadModel(
        head_id=str(obj.get("emote_head_id") or f"object:{obj.name}"),
        v_template=base.astype(np.float32), faces=faces, exp_names=list(names or wanted),
        exp_dirs=dirs.astype(np.float32), joint_names=["global", "jaw"],
        joints=np.zeros((2, 3), np.float32), parents=np.array([-1, 0]),
        lbs_weights=np.zeros((n, 2), np.float32), landmark_names=list(marks),
        landmark_vertices=np.array(list(marks.values()), dtype=np.int64))


def _open_head_id() -> str:
    from ..model_runtime.heads.open_head import HEAD_ID

    return HEAD_ID


def source_head(result: dict) -> HeadModel | None:
    """The head the result's model was made for, when its basis is at hand."""
    import bpy

    names = [str(n) for n in np.asarray(result["exp_names"]).tolist()]
    head_id = str(result.get("head_id", ""))
    if names == list(OPEN_HEAD_CHANNELS):
        return _open_head()
    for obj in bpy.data.objects:
        if obj.type == "MESH" and head_id and obj.get("emote_head_id") == head_id:
            head = head_model_of(obj, names)
            if head is not None:
                return head
    return None


def driven_share(cmap: channels.ChannelMap, n_channels: int) -> float:
    """The share of a result's expression channels that reach the head through `cmap`."""
    if n_channels == 0:
        return 1.0
    idle = sum(1 for n in cmap.unmatched if n != "jaw")
    return 1.0 - idle / n_channels


def retarget_if_needed(obj, result: dict, cmap: channels.ChannelMap, match):
    """(result, cmap, note): the result carried onto `obj`'s basis when too few of its channels
    fit the head and both bases are at hand (note says from which head), else unchanged with a
    note on why not (empty when no retarget was needed). `match(names)` re-matches channels."""
    n = len(result["exp_names"])
    if driven_share(cmap, n) >= RETARGET_BELOW:
        return result, cmap, ""
    source = source_head(result)
    if source is None:
        return result, cmap, (f"not retargeted: the basis of head {str(result.get('head_id'))!r}"
                              " is not in this file (add that head)")
    target = head_model_of(obj)
    if target is None:
        return result, cmap, (f"not retargeted: {obj.name} has no recognised expression keys "
                              "or no mouth landmarks (set the emote_landmarks property)")
    if target.exp_names == source.exp_names:
        return result, cmap, ""
    out = retarget.apply_to_result(retarget.retarget_map(source, target), result)
    return out, match(list(out["exp_names"])), f"retargeted from {source.head_id}"
