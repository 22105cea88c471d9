"""A small synthetic FLAME-format `.pkl` for tests: the real file's layout, a few hundred vertices.

The mesh is an ellipsoid head (metres, y up, +z out of the face, +x to the subject's left) with an
open neck, two eye holes and a mouth hole, five FLAME joints (global, neck, jaw, left eye, right
eye) and LBS weights. It is pickled like FLAME's own Python-2-era files: protocol 2, `shapedirs`
as a `chumpy.ch.Ch` object (a throw-away fake module, registered only while pickling),
`J_regressor` as a scipy csc matrix, byte strings as Python-2 `str` opcodes.
"""

from __future__ import annotations

import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

N_RINGS = 14  # rings below the top pole; the last one is the open neck
N_LON = 24  # vertices per ring; column 0 is the face's midline (+z), columns k and -k mirror
MOUTH_RING = 9  # ring of the mouth corners
EYE_RING = 5
EYE_COL = 3  # eye holes are the quads right of columns +3 and left of -3
JOINT_NAMES_FLAME = ("global", "neck", "jaw", "eye_left", "eye_right")


def _build_mesh() -> tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, list[int]]]:
    """Vertices, faces, the mouth landmarks and the vertex groups used for joints and weights."""
    rx, ry, rz = 0.075, 0.10, 0.09
    verts = [(0.0, ry, 0.0)]
    theta = np.linspace(0.0, np.pi * 0.92, N_RINGS + 1)[1:]  # keep in step with y_ring below
    phi = 2 * np.pi * np.arange(N_LON) / N_LON
    for t in theta:
        for p in phi:
            verts.append((rx * np.sin(t) * np.sin(p), ry * np.cos(t), rz * np.sin(t) * np.cos(p)))
    v = np.array(verts)

    def vid(ring: int, col: int) -> int:
        return 1 + ring * N_LON + col % N_LON

    mouth_quads = {(r, c % N_LON) for r in (MOUTH_RING - 1, MOUTH_RING) for c in (-2, -1, 0, 1)}
    eye_quads = {(EYE_RING, EYE_COL), (EYE_RING, (-EYE_COL - 1) % N_LON)}
    faces = [(0, vid(0, c + 1), vid(0, c)) for c in range(N_LON)]
    for r in range(N_RINGS - 1):
        for c in range(N_LON):
            if (r, c) in mouth_quads or (r, c) in eye_quads:
                continue
            a, b, cc, d = vid(r, c), vid(r, c + 1), vid(r + 1, c + 1), vid(r + 1, c)
            faces += [(a, b, cc), (a, cc, d)]
    f = np.array(faces)
    # mouth corners stick out sideways a little, as lips do, so each corner is a single vertex
    for c in (2, -2):
        v[vid(MOUTH_RING, c), 0] *= 1.2
    # drop the vertices inside the mouth hole that no face uses any more, and renumber
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    new_index = np.cumsum(used) - 1
    v, f = v[used], new_index[f]
    remap = lambda r, c: int(new_index[vid(r, c)])  # noqa: E731
    landmarks = {
        "lip_upper_inner": remap(MOUTH_RING - 1, 0),
        "lip_lower_inner": remap(MOUTH_RING + 1, 0),
        "mouth_corner_left": remap(MOUTH_RING, 2),  # +x is the subject's left
        "mouth_corner_right": remap(MOUTH_RING, -2),
    }
    groups = {
        "neck_ring": [remap(N_RINGS - 1, c) for c in range(N_LON)],
        "neck_level": [remap(N_RINGS - 3, c) for c in range(N_LON)],
        "jaw_pivot": [remap(MOUTH_RING - 2, N_LON // 4), remap(MOUTH_RING - 2, -N_LON // 4)],
        "eye_left": [remap(r, c) for r in (EYE_RING, EYE_RING + 1) for c in (EYE_COL, EYE_COL + 1)],
        "eye_right": [remap(r, c) for r in (EYE_RING, EYE_RING + 1)
                      for c in (-EYE_COL, -EYE_COL - 1)],
    }
    return v, f, landmarks, groups


def _weights_and_regressor(v: np.ndarray, groups: dict[str, list[int]]):
    """LBS weights (V, 5) that sum to one and a joint regressor (5, V) that averages groups."""
    V = len(v)
    w = np.zeros((V, 5))
    y_ring = 0.10 * np.cos(np.linspace(0.0, np.pi * 0.92, N_RINGS + 1)[1:])
    y_mouth, y_upper = y_ring[MOUTH_RING], y_ring[MOUTH_RING - 1]
    jaw = np.clip((y_upper - v[:, 1]) / (y_upper - y_mouth), 0, 1) * np.clip(v[:, 2] / 0.03, 0, 1)
    y_neck = v[groups["neck_level"]][:, 1].mean()
    neck = np.clip((y_neck + 0.01 - v[:, 1]) / 0.02, 0, 1) * (1 - jaw)
    w[:, 2], w[:, 1] = jaw, neck
    for j, name in ((3, "eye_left"), (4, "eye_right")):
        w[groups[name]] = 0
        w[groups[name], j] = 1
    w[:, 0] = 1 - w[:, 1:].sum(1)
    reg = np.zeros((5, V))
    for j, name in enumerate(("neck_ring", "neck_level", "jaw_pivot", "eye_left", "eye_right")):
        reg[j, groups[name]] = 1.0 / len(groups[name])
    return w, reg


class _Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 `str` opcodes (as FLAME's files have them), not `_codecs.encode`."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _fake_chumpy() -> tuple[type, dict[str, types.ModuleType]]:
    """A class that pickles as `chumpy.ch.Ch` with its array in `x`, like chumpy's own."""
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray):
            self.x = x
            self._dirty_vars = set()  # chumpy keeps bookkeeping next to `x`
            self.label = None

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    pkg.ch = mod
    return Ch, {"chumpy": pkg, "chumpy.ch": mod}


def synthetic_flame_dict(n_exp: int = 100, n_shape: int = 300, seed: int = 0) -> dict:
    """The plain-array content of the synthetic FLAME file, plus `_facts` for assertions."""
    v, f, landmarks, groups = _build_mesh()
    w, reg = _weights_and_regressor(v, groups)
    rng = np.random.default_rng(seed)
    V = len(v)
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": v.astype(np.float64),
        "f": f.astype(np.uint32),
        "shapedirs": rng.normal(0, 1e-3, (V, 3, n_shape + n_exp)),
        "posedirs": rng.normal(0, 1e-3, (V, 3, 36)),
        "J_regressor": reg,
        "J": reg @ v,
        "weights": w,
        "kintree_table": kintree,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "_facts": {"landmarks": landmarks, "groups": groups},
    }


def write_synthetic_flame(path: str | Path, n_exp: int = 100, version: str = "2020",
                          n_shape: int = 300, seed: int = 0, py2_style: bool = True) -> dict:
    """Write the synthetic FLAME `.pkl` to `path`; return its plain content (with `_facts`).

    FLAME files carry no version inside: the loader reads it from the file name, so for
    `version="2023"` the name must contain "2023" (as FLAME 2023's `flame2023.pkl` does).
    """
    import scipy.sparse

    path = Path(path)
    if version not in ("2020", "2023"):
        raise ValueError(f"version must be '2020' or '2023', not {version!r}")
    if version == "2023" and "2023" not in path.name:
        raise ValueError("a FLAME 2023 file's name must contain '2023', e.g. flame2023.pkl")
    content = synthetic_flame_dict(n_exp=n_exp, n_shape=n_shape, seed=seed)
    Ch, modules = _fake_chumpy()
    out = {k: val for k, val in content.items() if k != "_facts"}
    out["shapedirs"] = Ch(content["shapedirs"])
    out["J_regressor"] = scipy.sparse.csc_matrix(content["J_regressor"])
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            if py2_style:
                _Py2StylePickler(fh, protocol=2).dump(out)
            else:
                pickle.dump(out, fh, protocol=2)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    content["_facts"]["head_id"] = f"flame{version}"
    return content
