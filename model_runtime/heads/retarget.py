"""A linear map between two heads' expression bases, so one head's model drives the other head.

A FLAME model's 100 expression coefficients can drive an ARKit-channel character, and an
ARKit-channel model (the open head's) a FLAME head. The map is fitted once per head pair, by least
squares on what the two bases do to the face: for corresponding face points of the two meshes,
the target coefficients that best reproduce the source's vertex displacements,

    M = argmin  sum_k w_k |D_t[k] M - s D_s[k]|^2 + ridge |M|^2      (target E_t x source E_s),

where D[k] (3 x E) are the expression directions at the k-th pair of corresponding vertices and s
the ratio of the heads' mouth widths. Correspondence is geometric: both faces are put in a frame
centred on the mouth and scaled by the mouth width (the required landmarks of every head model),
and each face vertex is paired with the other face's nearest vertex, both ways; the landmarks pair
exactly. Weights favour the lips (their closure and opening carry the speech), then the rest of
the mouth region; brows and eyes count, the back of the head does not.

The jaw rotation passes through unchanged (both heads have a jaw joint). An ARKit-channel target
receives jawOpen from the jaw as everywhere else (clamp(jaw_x / JAW_OPEN_FULL_RAD, 0, 1)), and its
other channels are clipped to their 0..1 range after the map. numpy only (runs in Blender, too).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .arkit_channels import (ARKIT_BLENDSHAPES, JAW_OPEN_FULL_RAD,
                                                OPEN_HEAD_CHANNELS)
from .head_model import HeadModel, vertex_normals

LIP_LANDMARKS = ("lip_upper_inner", "lip_lower_inner", "mouth_corner_left", "mouth_corner_right")
# Face box in mouth widths around the mouth centre: sideways, down, up, and how far behind the
# lips a point may lie and still be face.
FACE_BOX = {"x": 1.7, "y_down": 1.6, "y_up": 2.6, "z_back": 1.4}
# Each lip landmark pair against an average face vertex pair. Tuned on the synthetic FLAME head
# and the open head: 25 leaves the retargeted lip gap loose (correlation 0.53 for the lips' own
# shapes, jaw aside), 250 follows it (0.91) while the face's overall residual grows from 0.79 to
# 0.85 of the source motion (that head's random basis cannot follow smooth shapes anyway).
LANDMARK_WEIGHT = 250.0
MOUTH_WEIGHT = 6.0  # extra weight at the mouth centre, falling off over MOUTH_RADIUS
MOUTH_RADIUS = 0.7  # mouth widths
MAX_FACE_POINTS = 3000  # face vertices used per head (evenly thinned beyond; keeps the fit quick)
NON_FACE_GROUPS = ("mouth", "teeth", "tongue", "eye_white", "iris", "pupil",  # open-head groups
                   "lashes")

_ARKIT_SPELLINGS = set(ARKIT_BLENDSHAPES) | set(OPEN_HEAD_CHANNELS)


def is_arkit_head(exp_names) -> bool:
    """Whether every expression channel is an ARKit blendshape (Apple's or the _L/_R spelling)."""
    return len(exp_names) > 0 and all(n in _ARKIT_SPELLINGS for n in exp_names)


@dataclass
class RetargetMap:
    """Source expression (T, E_s) + jaw (T, 3) -> target expression (T, E_t) + jaw (T, 3)."""

    source_head_id: str
    target_head_id: str
    source_names: list[str]
    target_names: list[str]
    matrix: np.ndarray  # (E_t, E_s)
    jaw_open_column: int | None = None  # target column fed from the jaw rotation
    bounds: tuple[float, float] | None = None  # value range of the target channels
    jaw_open_full_rad: float = JAW_OPEN_FULL_RAD

    def apply(self, exp: np.ndarray, jaw: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
        """The target's (exp (T, E_t), jaw (T, 3)). With no jaw (an ARKit stream without one),
        the source's jawOpen sets the jaw: jaw_x = jawOpen * jaw_open_full_rad."""
        exp = np.asarray(exp, dtype=np.float64)
        if exp.ndim != 2 or exp.shape[1] != len(self.source_names):
            raise ValueError(f"expression has shape {exp.shape}; this map expects (T, "
                             f"{len(self.source_names)}) channels of {self.source_head_id!r}")
        if jaw is None:
            if "jawOpen" not in self.source_names:
                raise ValueError(f"no jaw rotation given and {self.source_head_id!r} has no "
                                 "jawOpen channel to take it from")
            jaw = np.zeros((exp.shape[0], 3))
            jaw[:, 0] = exp[:, self.source_names.index("jawOpen")] * self.jaw_open_full_rad
        jaw = np.asarray(jaw, dtype=np.float64)
        if jaw.shape != (exp.shape[0], 3):
            raise ValueError(f"jaw has shape {jaw.shape}, expected ({exp.shape[0]}, 3)")
        out = exp @ self.matrix.T
        if self.bounds is not None:
            out = np.clip(out, *self.bounds)
        if self.jaw_open_column is not None:
            out[:, self.jaw_open_column] = np.clip(jaw[:, 0] / self.jaw_open_full_rad, 0.0, 1.0)
        return out.astype(np.float32), jaw.astype(np.float32)


def _mouth_frame(head: HeadModel) -> tuple[np.ndarray, float]:
    v = head.v_template.astype(np.float64)
    centre = 0.5 * (v[head.landmark("lip_upper_inner")] + v[head.landmark("lip_lower_inner")])
    width = float(np.linalg.norm(v[head.landmark("mouth_corner_left")]
                                 - v[head.landmark("mouth_corner_right")]))
    if width <= 0:
        raise ValueError(f"head {head.head_id!r}: its mouth corners coincide")
    return centre, width


def _component(faces: np.ndarray, n_vertices: int, seed: int) -> np.ndarray:
    """Mask of the vertices connected to `seed` through faces (label propagation, numpy only)."""
    labels = np.arange(n_vertices)
    f = faces.astype(np.int64)
    while True:
        m = labels[f].min(axis=1)
        new = labels.copy()
        for c in range(3):
            np.minimum.at(new, f[:, c], m)
        new = new[new]  # jump along chains
        if np.array_equal(new, labels):
            break
        labels = new
    return labels == labels[seed]


def face_points(head: HeadModel) -> tuple[np.ndarray, np.ndarray]:
    """(vertex indices, their positions in the mouth frame) of the head's front face surface."""
    centre, width = _mouth_frame(head)
    v = head.v_template.astype(np.float64)
    p = (v - centre) / width
    faces = head.faces.astype(np.int64)
    groups, names = head.extra.get("face_group"), head.extra.get("face_group_names")
    if groups is not None and names is not None and len(groups) == len(faces):
        skip = [i for i, n in enumerate(str(s) for s in names) if n in NON_FACE_GROUPS]
        faces = faces[~np.isin(np.asarray(groups), skip)]
    keep = _component(faces, len(v), head.landmark("lip_upper_inner"))
    used = np.zeros(len(v), bool)
    used[faces.ravel()] = True
    normals = vertex_normals(v, faces)
    box = FACE_BOX
    keep &= used & (np.abs(p[:, 0]) <= box["x"]) & (p[:, 1] >= -box["y_down"])
    keep &= (p[:, 1] <= box["y_up"]) & (p[:, 2] >= -box["z_back"]) & (normals[:, 2] > 0.0)
    idx = np.nonzero(keep)[0]
    if len(idx) > MAX_FACE_POINTS:
        idx = idx[np.linspace(0, len(idx) - 1, MAX_FACE_POINTS).round().astype(np.int64)]
    return idx, p[idx]


def _nearest(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Index into b of each row of a's nearest point."""
    out = np.empty(len(a), dtype=np.int64)
    bb = (b * b).sum(1)
    for i in range(0, len(a), chunk):
        blk = a[i:i + chunk]
        d = (blk * blk).sum(1)[:, None] - 2 * blk @ b.T + bb[None]
        out[i:i + chunk] = np.argmin(d, axis=1)
    return out


def correspondences(source: HeadModel, target: HeadModel):
    """Pairs of vertices (source index, target index, weight) that sit at the same face place."""
    si, sp = face_points(source)
    ti, tp = face_points(target)
    if len(si) == 0 or len(ti) == 0:
        raise ValueError("no face vertices found around the mouth landmarks of "
                         f"{source.head_id!r} or {target.head_id!r}")
    s_to_t = _nearest(sp, tp)
    t_to_s = _nearest(tp, sp)
    pairs_s = np.concatenate([si, si[t_to_s]])
    pairs_t = np.concatenate([ti[s_to_t], ti])
    where = np.concatenate([sp, tp])  # face place of each pair, in mouth widths
    r = np.linalg.norm(where * np.array([1.0, 1.5, 1.0]), axis=1)
    w = 1.0 + MOUTH_WEIGHT * np.exp(-(r / MOUTH_RADIUS) ** 2)
    # each direction counts once in total, whatever the mesh resolutions
    w[:len(si)] *= 1.0 / len(si)
    w[len(si):] *= 1.0 / len(ti)
    lm_s = np.array([source.landmark(n) for n in LIP_LANDMARKS])
    lm_t = np.array([target.landmark(n) for n in LIP_LANDMARKS])
    base = float(w.sum()) / len(w)
    return (np.concatenate([pairs_s, lm_s]), np.concatenate([pairs_t, lm_t]),
            np.concatenate([w, np.full(len(lm_s), LANDMARK_WEIGHT * base)]))


def fit_retarget(source: HeadModel, target: HeadModel, ridge: float = 1e-4) -> RetargetMap:
    """The least-squares map from `source`'s expression channels to `target`'s (see module)."""
    s_idx, t_idx, w = correspondences(source, target)
    scale = _mouth_frame(target)[1] / _mouth_frame(source)[1]
    arkit_target = is_arkit_head(target.exp_names)
    fit_cols = [i for i, n in enumerate(target.exp_names)
                if not (arkit_target and n == "jawOpen")]
    d_t = target.exp_dirs[t_idx][:, :, fit_cols].astype(np.float64)  # (K, 3, E_t')
    d_s = source.exp_dirs[s_idx].astype(np.float64) * scale  # (K, 3, E_s)
    sw = np.sqrt(w)[:, None, None]
    a = (d_t * sw).reshape(-1, len(fit_cols))
    b = (d_s * sw).reshape(-1, d_s.shape[2])
    ata = a.T @ a
    lam = ridge * float(np.trace(ata)) / max(len(fit_cols), 1)
    m = np.linalg.solve(ata + lam * np.eye(len(fit_cols)), a.T @ b)
    matrix = np.zeros((len(target.exp_names), len(source.exp_names)))
    matrix[fit_cols] = m
    jaw_open = target.exp_names.index("jawOpen") if (arkit_target and "jawOpen" in
                                                     target.exp_names) else None
    full = float(np.asarray(target.extra.get("jaw_open_full_rad", JAW_OPEN_FULL_RAD)))
    return RetargetMap(source.head_id, target.head_id, list(source.exp_names),
                       list(target.exp_names), matrix, jaw_open,
                       (0.0, 1.0) if arkit_target else None, full)


def _dir(exp_names, exp_dirs: np.ndarray, name: str) -> np.ndarray | None:
    """The direction of an ARKit channel in Apple's or the _L/_R spelling, or None."""
    for n in (name, name.replace("Left", "_L").replace("Right", "_R")):
        if n in exp_names:
            return np.asarray(exp_dirs[:, :, list(exp_names).index(n)], dtype=np.float64)
    return None


def landmarks_from_arkit_shapes(v_template: np.ndarray, exp_dirs: np.ndarray,
                                exp_names) -> dict[str, int] | None:
    """The four mouth landmarks of an ARKit-shaped head, read off what its shapes move: each mouth
    corner is the vertex mouthSmileLeft/Right moves most; the inner lips are the vertices near
    the midline between the corners that mouthClose moves down (upper lip) and up (lower lip),
    or failing that mouthUpperUp and mouthLowerDown move up and down, by at least half as far as
    the most-moved vertex of that lip: of those, the upper/lower pair closest at rest and to the
    midline. None when the head lacks those shapes. Model frame: y up, +x the subject's left."""
    v = np.asarray(v_template, dtype=np.float64)
    smile_l, smile_r = (_dir(exp_names, exp_dirs, n) for n in ("mouthSmileLeft",
                                                                "mouthSmileRight"))
    if smile_l is None or smile_r is None:
        return None
    left = int(np.argmax(np.linalg.norm(smile_l, axis=1)))
    right = int(np.argmax(np.linalg.norm(smile_r, axis=1)))
    width = float(np.linalg.norm(v[left] - v[right]))
    if width <= 0:
        return None
    centre = 0.5 * (v[left] + v[right])
    near = ((np.abs(v[:, 0] - centre[0]) < 0.12 * width)
            & (np.abs(v[:, 1] - centre[1]) < 0.5 * width)
            & (v[:, 2] > centre[2] - 0.1 * width))  # in front of the corners: lips, not teeth
    close = _dir(exp_names, exp_dirs, "mouthClose")
    if close is not None and np.abs(close[near, 1]).max(initial=0) > 0:
        up_move, low_move = -close[:, 1], close[:, 1]
    else:
        parts = [_dir(exp_names, exp_dirs, n) for n in ("mouthUpperUpLeft", "mouthUpperUpRight",
                                                        "mouthLowerDownLeft",
                                                        "mouthLowerDownRight")]
        if any(p is None for p in parts):
            return None
        up_move, low_move = (parts[0] + parts[1])[:, 1], -(parts[2] + parts[3])[:, 1]
    if not near.any():
        return None
    idx = np.nonzero(near)[0]
    # Every vertex of a lip that the shape moves at least half as far as that lip's most-moved
    # one, then of those the upper/lower pair closest at rest (their distances from the midline
    # counted in): the centre of the lips' line of contact. The most-moved vertex alone may sit
    # on a lip's front: Face Cap's lower lip moves as one piece.
    if up_move[idx].max() <= 0 or low_move[idx].max() <= 0:
        return None
    ups = idx[up_move[idx] >= 0.5 * up_move[idx].max()]
    lows = idx[low_move[idx] >= 0.5 * low_move[idx].max()]
    dist = (np.linalg.norm(v[ups][:, None] - v[lows][None], axis=-1)
            + np.abs(v[ups, 0] - centre[0])[:, None] + np.abs(v[lows, 0] - centre[0])[None])
    i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
    upper, lower = int(ups[i]), int(lows[j])
    if upper == lower:
        return None
    return {"lip_upper_inner": upper, "lip_lower_inner": lower, "mouth_corner_left": left,
            "mouth_corner_right": right}


def _fingerprint(head: HeadModel) -> str:
    h = hashlib.sha1(head.head_id.encode())
    for arr in (head.v_template, head.exp_dirs, head.faces, head.landmark_vertices):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


_CACHE: dict[tuple[str, str], RetargetMap] = {}


def retarget_map(source: HeadModel, target: HeadModel) -> RetargetMap:
    """`fit_retarget`, computed once per pair of heads in this process."""
    key = (_fingerprint(source), _fingerprint(target))
    if key not in _CACHE:
        _CACHE[key] = fit_retarget(source, target)
    return _CACHE[key]


def apply_to_result(rmap: RetargetMap, result: dict) -> dict:
    """A runtime result (RESULT.npz arrays) carried onto the map's target head: `exp` and
    `exp_names` become the target's, `jaw` passes through; other arrays are kept."""
    names = [str(n) for n in np.asarray(result["exp_names"]).tolist()]
    if names != rmap.source_names:
        raise ValueError(f"the result's channels ({len(names)}, first {names[:3]}) are not those "
                         f"of {rmap.source_head_id!r} that this map was fitted for")
    exp, jaw = rmap.apply(result["exp"], result["jaw"])
    out = dict(result)
    out.update(exp=exp, jaw=jaw, exp_names=np.array(rmap.target_names, dtype=str),
               head_id=np.array(rmap.target_head_id),
               retargeted_from=np.array(rmap.source_head_id))
    return out
