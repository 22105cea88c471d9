"""The head-model `.npz` contract (see DESIGN.md) and its vertex evaluation in numpy.

A head model is a template mesh plus linear expression directions, a joint hierarchy with linear
blend skinning weights, optional pose correctives and named landmark vertices. FLAME heads and the
bundled open head both come in this form, so every other part treats them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EmoteInputError

REQUIRED_LANDMARKS = (
    "lip_upper_inner",
    "lip_lower_inner",
    "mouth_corner_left",
    "mouth_corner_right",
)
# Pose correctives use FLAME's pose feature: (R_j - I) flattened row-major, joints 1..J-1 in order.
POSE_FEATURE = "rotmat_minus_identity_nonroot"


@dataclass
class HeadModel:
    head_id: str
    v_template: np.ndarray  # (V, 3) float32, metres
    faces: np.ndarray  # (F, 3) int32
    exp_names: list[str]
    exp_dirs: np.ndarray  # (V, 3, E) float32
    joint_names: list[str]
    joints: np.ndarray  # (J, 3) float32
    parents: np.ndarray  # (J,) int, -1 for the root
    lbs_weights: np.ndarray  # (V, J) float32
    landmark_names: list[str]
    landmark_vertices: np.ndarray  # (L,) int
    pose_dirs: np.ndarray | None = None  # (V, 3, P) float32
    extra: dict = field(default_factory=dict)  # other arrays kept as they are (e.g. uv, groups)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def jaw_index(self) -> int:
        return self.joint_names.index("jaw")

    def landmark(self, name: str) -> int:
        """Vertex index of the named landmark."""
        try:
            return int(self.landmark_vertices[self.landmark_names.index(name)])
        except ValueError:
            raise KeyError(f"head {self.head_id!r} has no landmark {name!r}") from None


def validate(head: HeadModel) -> None:
    """Check shapes and names against the contract; raise EmoteInputError(bad_head_model)."""

    def fail(msg: str) -> None:
        raise EmoteInputError("bad_head_model", f"Head model {head.head_id!r} is invalid: {msg}. "
                              "Rebuild it with the head builder or pick another head file.")

    V = head.v_template.shape[0] if head.v_template.ndim == 2 else -1
    if head.v_template.ndim != 2 or head.v_template.shape[1] != 3 or V < 3:
        fail(f"v_template has shape {head.v_template.shape}, expected (V, 3)")
    if head.faces.ndim != 2 or head.faces.shape[1] != 3:
        fail(f"faces has shape {head.faces.shape}, expected (F, 3)")
    if head.faces.size and (head.faces.min() < 0 or head.faces.max() >= V):
        fail("faces index vertices that do not exist")
    E = len(head.exp_names)
    if head.exp_dirs.shape != (V, 3, E):
        fail(f"exp_dirs has shape {head.exp_dirs.shape}, expected {(V, 3, E)}")
    J = len(head.joint_names)
    if "jaw" not in head.joint_names:
        fail("no joint is named 'jaw'")
    if head.joints.shape != (J, 3) or head.parents.shape != (J,):
        fail("joints/parents do not match joint_names")
    for j, p in enumerate(head.parents):
        if not (p == -1 and j == 0) and not (0 <= p < j):
            fail("parents must list each joint after its parent, with only joint 0 as root")
    if head.lbs_weights.shape != (V, J):
        fail(f"lbs_weights has shape {head.lbs_weights.shape}, expected {(V, J)}")
    if head.pose_dirs is not None and head.pose_dirs.shape != (V, 3, 9 * (J - 1)):
        fail(f"pose_dirs has shape {head.pose_dirs.shape}, expected {(V, 3, 9 * (J - 1))}")
    missing = [n for n in REQUIRED_LANDMARKS if n not in head.landmark_names]
    if missing:
        fail(f"missing landmarks {missing}")
    if len(head.landmark_names) != len(head.landmark_vertices):
        fail("landmark_names and landmark_vertices differ in length")
    if len(head.landmark_vertices) and (np.min(head.landmark_vertices) < 0
                                        or np.max(head.landmark_vertices) >= V):
        fail("a landmark indexes a vertex that does not exist")
    if not np.all(np.isfinite(head.v_template)) or not np.all(np.isfinite(head.exp_dirs)):
        fail("it contains NaN or Inf values")


_CORE_KEYS = {"head_id", "v_template", "faces", "exp_names", "exp_dirs", "joint_names", "joints",
              "parents", "lbs_weights", "pose_dirs", "pose_feature", "landmark_names",
              "landmark_vertices"}


def save_head(head: HeadModel, path: str | Path) -> None:
    """Write the head as an uncompressed-pickle-free `.npz` (deterministic bytes for equal input)."""
    validate(head)
    arrays = {
        "head_id": np.array(head.head_id),
        "v_template": head.v_template.astype(np.float32),
        "faces": head.faces.astype(np.int32),
        "exp_names": np.array(head.exp_names, dtype=str),
        "exp_dirs": head.exp_dirs.astype(np.float32),
        "joint_names": np.array(head.joint_names, dtype=str),
        "joints": head.joints.astype(np.float32),
        "parents": head.parents.astype(np.int32),
        "lbs_weights": head.lbs_weights.astype(np.float32),
        "landmark_names": np.array(head.landmark_names, dtype=str),
        "landmark_vertices": head.landmark_vertices.astype(np.int32),
    }
    if head.pose_dirs is not None:
        arrays["pose_dirs"] = head.pose_dirs.astype(np.float32)
        arrays["pose_feature"] = np.array(POSE_FEATURE)
    for k, v in head.extra.items():
        arrays[k] = np.asarray(v)
    _write_npz_deterministic(Path(path), arrays)


def _write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez stamps the current time into the zip; write fixed timestamps instead."""
    import io
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def load_head(path: str | Path) -> HeadModel:
    """Read and validate a head-model `.npz` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"Head model file not found: {path}. "
                              "Check the path, or use the default head.")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # zip or npy errors
        raise EmoteInputError("bad_head_model", f"Cannot read head model {path}: {exc}. "
                              "The file must be a head-model .npz written by this tool.") from None
    missing = [k for k in ("head_id", "v_template", "faces", "exp_names", "exp_dirs",
                           "joint_names", "joints", "parents", "lbs_weights", "landmark_names",
                           "landmark_vertices") if k not in d]
    if missing:
        raise EmoteInputError("bad_head_model", f"Head model {path} lacks {missing}. "
                              "It is not a head-model .npz; build one with the head tools.")
    head = HeadModel(
        head_id=str(d["head_id"]),
        v_template=d["v_template"].astype(np.float32),
        faces=d["faces"].astype(np.int32),
        exp_names=[str(s) for s in d["exp_names"]],
        exp_dirs=d["exp_dirs"].astype(np.float32),
        joint_names=[str(s) for s in d["joint_names"]],
        joints=d["joints"].astype(np.float32),
        parents=d["parents"].astype(np.int64),
        lbs_weights=d["lbs_weights"].astype(np.float32),
        landmark_names=[str(s) for s in d["landmark_names"]],
        landmark_vertices=d["landmark_vertices"].astype(np.int64),
        pose_dirs=d["pose_dirs"].astype(np.float32) if "pose_dirs" in d else None,
        extra={k: v for k, v in d.items() if k not in _CORE_KEYS},
    )
    validate(head)
    return head


def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit vertex normals of a triangle mesh (area-weighted face normals), turned to
    point out of the head when the mesh winds inwards."""
    n = np.zeros_like(v)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    for c in range(3):
        np.add.at(n, faces[:, c], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    used = np.unique(faces)
    if np.mean(np.sum(n[used] * (v[used] - v[used].mean(0)), axis=1)) < 0:
        n = -n  # the mesh winds inwards: make the normals point out of the head
    return n


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) axis-angle in radians to (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + s * K + (1.0 - c) * (K @ K)


def evaluate(head: HeadModel, exp: np.ndarray, jaw: np.ndarray,
             pose: np.ndarray | None = None) -> np.ndarray:
    """Vertices (T, V, 3) for expression (T, E) and jaw axis-angle (T, 3).

    `pose` (T, J, 3) optionally gives every joint's local axis-angle; its jaw entry is replaced
    by `jaw`. Expression blend first, then pose correctives, then linear blend skinning.
    """
    exp = np.atleast_2d(np.asarray(exp, dtype=np.float32))
    jaw = np.atleast_2d(np.asarray(jaw, dtype=np.float32))
    T, J = exp.shape[0], len(head.joint_names)
    if pose is None:
        pose = np.zeros((T, J, 3), dtype=np.float32)
    else:
        pose = np.array(pose, dtype=np.float32, copy=True)
    pose[:, head.jaw_index] = jaw
    v = head.v_template[None] + np.einsum("vce,te->tvc", head.exp_dirs, exp, optimize=True)
    rot = axis_angle_to_matrix(pose)  # (T, J, 3, 3)
    if head.pose_dirs is not None:
        feat = (rot[:, 1:] - np.eye(3)).reshape(T, -1).astype(np.float32)
        v = v + np.einsum("vcp,tp->tvc", head.pose_dirs, feat, optimize=True)
    A = _skinning_transforms(rot, head.joints.astype(np.float64), head.parents)  # (T, J, 3, 4)
    W = head.lbs_weights.astype(np.float64)
    M = np.einsum("vj,tjab->tvab", W, A, optimize=True)  # (T, V, 3, 4)
    out = np.einsum("tvab,tvb->tva", M[..., :3], v, optimize=True) + M[..., 3]
    return out.astype(np.float32)


def _skinning_transforms(rot: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Per-joint skinning transforms (T, J, 3, 4) mapping rest-pose points to posed points."""
    T, J = rot.shape[:2]
    R_world = np.empty_like(rot)
    t_world = np.empty((T, J, 3))
    for j in range(J):
        p = parents[j]
        if p < 0:
            R_world[:, j] = rot[:, j]
            t_world[:, j] = joints[j]
        else:
            R_world[:, j] = R_world[:, p] @ rot[:, j]
            t_world[:, j] = np.einsum("tab,b->ta", R_world[:, p], joints[j] - joints[p]) + t_world[:, p]
    # A_j x = R_world_j (x - joint_j) + t_world_j
    trans = t_world - np.einsum("tjab,jb->tja", R_world, joints)
    return np.concatenate([R_world, trans[..., None]], axis=-1)
