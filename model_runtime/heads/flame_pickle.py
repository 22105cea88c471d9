"""Load a FLAME model `.pkl` (2020 or 2023 release) into a HeadModel, safely and numpy-only.

What is taken from the file and how:
- `v_template` (V, 3) metres and `f` (F, 3) as they are.
- `shapedirs` (V, 3, K): the first `n_shape` (300 in FLAME's releases, K = 400) are identity
  shape, the rest expression; `exp_dirs` keeps the first `n_exp` expression components,
  named exp000, exp001, ...
- `posedirs`, stored (V, 3, P) or (V*3, P) with P = 36: FLAME (like SMPL) flattens it to
  (V*3, P), transposes it to (P, V*3) and adds `pose_feature @ posedirs`, with pose_feature the
  row-major flattening of (R_j - I) for joints 1..4. So offset[v, c] = sum_p posedirs[v, c, p]
  * feature[p], which is exactly our `pose_dirs` (V, 3, P) with POSE_FEATURE; no reordering.
- `J_regressor` (5, V), sparse in the file: joints = J_regressor @ v_template.
- `weights` (V, 5) LBS weights; `kintree_table` (2, 5): row 0 the parent ids (the root's is
  4294967295 or -1), row 1 the joint ids.
- Joint names: FLAME's pose vector is [global, neck, jaw, eye, eye] (EMOTE_FACTS.md; smplx's
  FLAME layer concatenates leye_pose then reye_pose). Rather than trust that order, the two eye
  joints are named from their regressed positions: +x is the subject's left in FLAME's frame, so
  the eye joint with the larger x is `eye_left`.
- FLAME regresses joints from the template plus shape AND expression blend, so its joints move
  with expression; `extra["joint_exp_dirs"]` (J, 3, E) = J_regressor @ exp_dirs records that.
- Landmarks: the pickle names none. `find_mouth_landmarks` finds FLAME's mouth opening (FLAME
  models no mouth interior, so the inner lip contour is a loop of boundary edges) and takes its
  outermost vertices in x as the corners and its midline vertices as the inner lips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EmoteInputError
from .head_model import HeadModel, validate
from ..safe_pickle import safe_load

FLAME_JOINT_COUNT = 5
DEFAULT_N_SHAPE = 300
REQUIRED_FIELDS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
                   "kintree_table")


def load_flame(path: str | Path, n_exp: int | None = None, n_shape: int = DEFAULT_N_SHAPE,
               head_id: str | None = None, shape: np.ndarray | None = None) -> HeadModel:
    """Read a FLAME `.pkl` with the restricted unpickler and return a validated HeadModel.

    `n_exp` keeps the first expression components (all when None; EMOTE v2 uses 100, v1 50).
    `head_id` defaults to "flame2023" when the file name contains 2023, else "flame2020" (the
    files carry no version). `shape` (identity coefficients, up to `n_shape`) is baked into the
    template and joints when given.
    """
    path = Path(path)
    data = safe_load(path)
    where = f"FLAME file {path.name}"
    if not isinstance(data, dict):
        _fail(where, f"it holds a {type(data).__name__}, not FLAME's dictionary of arrays")
    missing = [k for k in REQUIRED_FIELDS if k not in data]
    if missing:
        _fail(where, f"it lacks the field(s) {', '.join(missing)}")

    v_template = _array(data, "v_template", where, np.float64)
    if v_template.ndim != 2 or v_template.shape[1] != 3 or len(v_template) < 4:
        _fail(where, f"v_template has shape {v_template.shape}, expected (V, 3)")
    V = len(v_template)
    faces = _array(data, "f", where, np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
        _fail(where, f"f has shape {faces.shape}, expected (F, 3)")
    if faces.min() < 0 or faces.max() >= V:
        _fail(where, "f refers to vertices that v_template does not have")

    shapedirs = _array(data, "shapedirs", where, np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (V, 3):
        _fail(where, f"shapedirs has shape {shapedirs.shape}, expected ({V}, 3, K)")
    K = shapedirs.shape[2]
    if not 0 <= n_shape < K:
        _fail(where, f"shapedirs has {K} components, so none is left for expression after "
                     f"{n_shape} shape components; pass n_shape (FLAME's releases use 300)")
    available = K - n_shape
    if n_exp is None:
        n_exp = available
    if not 1 <= n_exp <= available:
        _fail(where, f"it has {available} expression components, {n_exp} were asked for")
    if shape is not None:
        shape = np.asarray(shape, dtype=np.float64).ravel()
        if len(shape) > n_shape:
            _fail(where, f"{len(shape)} shape coefficients given, the model has {n_shape}")
        v_template = v_template + shapedirs[:, :, :len(shape)] @ shape
    exp_dirs = shapedirs[:, :, n_shape:n_shape + n_exp]

    regressor = _array(data, "J_regressor", where, np.float64)
    if regressor.shape != (FLAME_JOINT_COUNT, V):
        _fail(where, f"J_regressor has shape {regressor.shape}, expected ({FLAME_JOINT_COUNT}, "
                     f"{V})")
    joints = regressor @ v_template
    weights = _array(data, "weights", where, np.float64)
    if weights.shape != (V, FLAME_JOINT_COUNT):
        _fail(where, f"weights has shape {weights.shape}, expected ({V}, {FLAME_JOINT_COUNT})")
    parents = _parents(_array(data, "kintree_table", where, np.int64), where)
    pose_dirs = _pose_dirs(_array(data, "posedirs", where, np.float64), V, where)

    joint_names = ["global", "neck", "jaw", "eye_left", "eye_right"]
    if joints[3, 0] < joints[4, 0]:
        joint_names[3:] = ["eye_right", "eye_left"]
    try:
        marks = find_mouth_landmarks(v_template, faces)
    except ValueError as exc:
        _fail(where, f"its mesh has no recognisable mouth opening ({exc})")
    if head_id is None:
        head_id = "flame2023" if "2023" in path.name else "flame2020"
    head = HeadModel(
        head_id=head_id,
        v_template=v_template.astype(np.float32),
        faces=faces.astype(np.int32),
        exp_names=[f"exp{i:03d}" for i in range(n_exp)],
        exp_dirs=np.ascontiguousarray(exp_dirs, dtype=np.float32),
        joint_names=joint_names,
        joints=joints.astype(np.float32),
        parents=parents,
        lbs_weights=weights.astype(np.float32),
        landmark_names=list(marks),
        landmark_vertices=np.array(list(marks.values()), dtype=np.int64),
        pose_dirs=pose_dirs.astype(np.float32),
        # FLAME regresses its joints from the expression-deformed mesh, so they move with
        # expression; kept for exactness, HeadModel's evaluate() uses fixed joints.
        extra={"joint_exp_dirs": np.einsum("jv,vce->jce", regressor, exp_dirs).astype(np.float32)},
    )
    validate(head)
    return head


def _fail(where: str, what: str) -> None:
    raise EmoteInputError("bad_head_model", f"The {where} cannot be used: {what}. Select FLAME's "
                          "own generic_model.pkl (FLAME 2020) or flame2023.pkl, unchanged.")


def _array(data: dict, key: str, where: str, dtype: type) -> np.ndarray:
    try:
        arr = np.asarray(data[key], dtype=dtype)
    except (TypeError, ValueError):
        _fail(where, f"its field {key} is not a numeric array")
    if not np.all(np.isfinite(arr)):
        _fail(where, f"its field {key} contains NaN or Inf")
    return arr


def _parents(kintree: np.ndarray, where: str) -> np.ndarray:
    """Parent index per joint from FLAME's kintree_table (2, J); -1 for the root."""
    if kintree.shape != (2, FLAME_JOINT_COUNT):
        _fail(where, f"kintree_table has shape {kintree.shape}, expected (2, {FLAME_JOINT_COUNT})")
    column_of = {int(jid): col for col, jid in enumerate(kintree[1])}
    parents = np.array([column_of.get(int(p), -1) for p in kintree[0]], dtype=np.int64)
    parents[0] = -1
    if any(not 0 <= p < j for j, p in enumerate(parents) if j > 0):
        _fail(where, "kintree_table does not list each joint after its parent")
    return parents


def _pose_dirs(posedirs: np.ndarray, V: int, where: str) -> np.ndarray:
    """posedirs as (V, 3, P), from FLAME's (V, 3, P), (V*3, P) or transposed (P, V*3)."""
    P = 9 * (FLAME_JOINT_COUNT - 1)
    if posedirs.shape == (V, 3, P):
        return posedirs
    if posedirs.shape == (V * 3, P):
        return posedirs.reshape(V, 3, P)
    if posedirs.shape == (P, V * 3):
        return posedirs.T.reshape(V, 3, P)
    _fail(where, f"posedirs has shape {posedirs.shape}, expected ({V}, 3, {P})")
    raise AssertionError  # unreachable


def boundary_loops(faces: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The mesh's holes: vertex sets of connected edges used by exactly one face, and those
    border edges (B, 2)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    border = uniq[counts == 1]
    parent: dict[int, int] = {}

    def root(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in border:
        parent[root(int(a))] = root(int(b))
    groups: dict[int, list[int]] = {}
    for a in parent:
        groups.setdefault(root(a), []).append(a)
    return [np.array(sorted(g)) for g in groups.values()], border


def find_mouth_landmarks(vertices: np.ndarray, faces: np.ndarray) -> dict[str, int]:
    """Inner-lip and mouth-corner vertices from the mouth opening of a FLAME-topology mesh.

    The mouth is the hole that straddles the face's midline (x = centre of the bounding box) and
    lies furthest forward (+z); the neck opening also straddles the midline but lies further
    back, eye openings do not straddle it. Corners: the hole's vertices with the largest x (the
    subject's left) and smallest x. The hole's edge loop is split at the corners into two chains;
    the higher one is the upper lip; on each the vertex nearest the midline is the inner lip.
    Raises ValueError when there is no such hole.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    loops, border = boundary_loops(faces)
    mid_x = 0.5 * (vertices[:, 0].min() + vertices[:, 0].max())
    candidates = [g for g in loops if len(g) >= 4
                  and vertices[g, 0].min() < mid_x < vertices[g, 0].max()]
    if not candidates:
        raise ValueError("no hole in the mesh crosses the face's midline")
    mouth = max(candidates, key=lambda g: vertices[g, 2].mean())
    xs = vertices[mouth, 0]
    left, right = int(mouth[np.argmax(xs)]), int(mouth[np.argmin(xs)])
    chains = _split_loop(mouth, border, left, right)
    if chains is None:  # not a simple loop: split by height against the corner-to-corner line
        p, q = vertices[right], vertices[left]
        t = np.clip((vertices[mouth, 0] - p[0]) / max(q[0] - p[0], 1e-12), 0, 1)
        above = vertices[mouth, 1] > p[1] + t * (q[1] - p[1])
        chains = [mouth[above], mouth[~above]]
    chains = [c for c in chains if len(c)]
    if len(chains) != 2:
        raise ValueError("the mouth opening has no upper and lower lip edge")
    upper, lower = sorted(chains, key=lambda c: -vertices[c, 1].mean())
    near_mid = lambda c: int(c[np.argmin(np.abs(vertices[c, 0] - mid_x))])  # noqa: E731
    return {
        "lip_upper_inner": near_mid(upper),
        "lip_lower_inner": near_mid(lower),
        "mouth_corner_left": left,
        "mouth_corner_right": right,
    }


def _split_loop(loop: np.ndarray, border: np.ndarray, a: int, b: int) -> list[np.ndarray] | None:
    """The two vertex chains strictly between `a` and `b` along a simple edge loop, else None."""
    members = set(loop.tolist())
    nbrs: dict[int, list[int]] = {int(v): [] for v in loop}
    for x, y in border:
        if int(x) in members:
            nbrs[int(x)].append(int(y))
            nbrs[int(y)].append(int(x))
    if any(len(n) != 2 for n in nbrs.values()):
        return None
    chains = []
    for first in nbrs[a]:
        chain, prev, cur = [], a, first
        while cur != b:
            if cur == a or len(chain) > len(loop):
                return None
            chain.append(cur)
            prev, cur = cur, next(n for n in nbrs[cur] if n != prev)
        chains.append(np.array(chain, dtype=np.int64))
    return chains
