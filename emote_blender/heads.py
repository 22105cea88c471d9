"""Build Blender head objects from a head model: mesh, expression shape keys, skinned armature.

The head model is in FLAME coordinates (y up, +z out of the face); Blender is Z-up, so a point
(x, y, z) becomes (x, -z, y). The armature deforms the mesh with the model's LBS weights, and the
jaw's pose correctives (when the file has them) are shape keys driven by the jaw bone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from ..model_runtime.errors import EmoteInputError
from ..model_runtime.heads.head_model import HeadModel, load_head

# FLAME (y up) -> Blender (z up): blender = TO_BLENDER @ flame
TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BONE_LENGTH = 0.03
SHAPE_KEY_RANGE = 10.0  # FLAME coefficients reach about +-3; keep slider limits well outside
_QUAT_R = (  # rotation matrix entries of a unit quaternion (w, x, y, z)
    ("1 - 2*(y*y + z*z)", "2*(x*y - w*z)", "2*(x*z + w*y)"),
    ("2*(x*y + w*z)", "1 - 2*(x*x + z*z)", "2*(y*z - w*x)"),
    ("2*(x*z - w*y)", "2*(y*z + w*x)", "1 - 2*(x*x + y*y)"),
)


def to_blender(points: np.ndarray) -> np.ndarray:
    """FLAME-space points or directions (..., 3) -> Blender space."""
    return np.asarray(points, dtype=np.float64) @ TO_BLENDER.T


def load_head_file(path: str | Path, runtime_python: str | None = None) -> HeadModel:
    """A head model from a head `.npz` or a FLAME `.pkl`.

    FLAME pickles are read in this process when the loader needs nothing beyond numpy; otherwise
    the runtime's interpreter converts the file to a temporary `.npz` first.
    """
    path = Path(path)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"Head file not found: {path}. Pick the FLAME "
                              "model (.pkl) or a head .npz.")
    if path.suffix.lower() == ".npz":
        return load_head(path)
    if path.suffix.lower() != ".pkl":
        raise EmoteInputError("unsupported_format", f"{path.name} is not a FLAME .pkl or head "
                              ".npz file. Choose FLAME's generic_model.pkl or a head .npz.")
    try:
        from ..model_runtime.heads.flame_pickle import load_flame
    except ImportError:
        return _convert_with_runtime(path, runtime_python)
    return load_flame(path)


def _convert_with_runtime(path: Path, runtime_python: str | None) -> HeadModel:
    """Convert a FLAME pickle with the runtime interpreter (which has scipy) and load the .npz."""
    import tempfile

    from .runtime_env import runtime_env

    py = runtime_python or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "head.npz"
        code = ("import sys; from model_runtime.heads.flame_pickle import load_flame; "
                "from model_runtime.heads.head_model import save_head; "
                "save_head(load_flame(sys.argv[1]), sys.argv[2])")
        proc = subprocess.run([py, "-c", code, str(path), str(out)], capture_output=True,
                              text=True, env=runtime_env(py), timeout=300)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise EmoteInputError("bad_head_model", f"Could not read FLAME file {path.name}: "
                                  f"{tail[0]}. Check it is FLAME's generic_model.pkl.")
        return load_head(out)


def build_head(head: HeadModel, name: str | None = None, collection=None):
    """Create the head mesh and its armature; return (mesh object, armature object)."""
    import bpy

    name = name or head.head_id
    collection = collection or bpy.context.scene.collection
    verts = to_blender(head.v_template)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], head.faces.tolist())
    # a head is a smooth surface: flat shading shows every grid row as a band in the viewport
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    obj["emote_head_id"] = head.head_id

    obj.shape_key_add(name="Basis", from_mix=False)
    for e, ename in enumerate(head.exp_names):
        _add_key(obj, ename, verts + to_blender(head.exp_dirs[:, :, e]))

    arm_obj = _build_armature(head, name + "_rig", collection)
    arm_obj["emote_head_id"] = head.head_id
    for j, jname in enumerate(head.joint_names):
        group = obj.vertex_groups.new(name=jname)
        w = head.lbs_weights[:, j]
        for v in np.nonzero(w > 1e-6)[0].tolist():
            group.add([v], float(w[v]), "REPLACE")
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    mod.use_deform_preserve_volume = False  # FLAME is plain linear blend skinning
    obj.parent = arm_obj
    if head.pose_dirs is not None:
        _add_jaw_correctives(head, obj, arm_obj, verts)
    return obj, arm_obj


def _add_key(obj, name: str, coords: np.ndarray):
    kb = obj.shape_key_add(name=name, from_mix=False)
    kb.slider_min, kb.slider_max = -SHAPE_KEY_RANGE, SHAPE_KEY_RANGE
    kb.data.foreach_set("co", np.ascontiguousarray(coords, dtype=np.float32).ravel())
    kb.value = 0.0
    return kb


def _build_armature(head: HeadModel, name: str, collection):
    import bpy

    arm = bpy.data.armatures.new(name)
    arm_obj = bpy.data.objects.new(name, arm)
    collection.objects.link(arm_obj)
    joints = to_blender(head.joints)
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    view_layer.objects.active = arm_obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        for j, jname in enumerate(head.joint_names):
            eb = arm.edit_bones.new(jname)
            eb.head = joints[j].tolist()
            eb.tail = (joints[j] + (0.0, 0.0, BONE_LENGTH)).tolist()
            eb.roll = 0.0
            if head.parents[j] >= 0:
                eb.parent = arm.edit_bones[head.joint_names[head.parents[j]]]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active
    for pb in arm_obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return arm_obj


def bone_rest_matrix(arm_obj, bone_name: str) -> np.ndarray:
    """3x3 rest orientation of a bone in its armature's space."""
    return np.array(arm_obj.data.bones[bone_name].matrix_local.to_3x3(), dtype=np.float64)


def _add_jaw_correctives(head: HeadModel, obj, arm_obj, verts: np.ndarray) -> None:
    """Jaw pose-corrective shape keys, each driven by one entry of (R_jaw - I) in model space."""
    jaw = head.jaw_index
    rest = bone_rest_matrix(arm_obj, head.joint_names[jaw])
    m = TO_BLENDER.T @ rest  # R_model = M R_local M^T
    bone_path = f'pose.bones["{head.joint_names[jaw]}"].rotation_quaternion'
    for a in range(3):
        for b in range(3):
            k = (jaw - 1) * 9 + a * 3 + b
            kb = _add_key(obj, f"pose_{head.joint_names[jaw]}_{a}{b}",
                          verts + to_blender(head.pose_dirs[:, :, k]))
            terms = []
            for i in range(3):
                for j in range(3):
                    c = m[a, i] * m[b, j]
                    if abs(c) > 1e-9:
                        terms.append(f"({c:.9g})*({_QUAT_R[i][j]})")
            expr = " + ".join(terms) or "0"
            if a == b:
                expr = f"{expr} - 1"
            fc = kb.driver_add("value")
            drv = fc.driver
            drv.type = "SCRIPTED"
            for idx, var_name in enumerate("wxyz"):
                var = drv.variables.new()
                var.name = var_name
                var.type = "SINGLE_PROP"
                var.targets[0].id = arm_obj
                var.targets[0].data_path = f"{bone_path}[{idx}]"
            drv.expression = expr
    obj["emote_correctives"] = head.joint_names[jaw]


def find_rig(obj):
    """The armature that deforms a head mesh (its parent or armature modifier), or None."""
    for mod in obj.modifiers:
        if mod.type == "ARMATURE" and mod.object is not None:
            return mod.object
    if obj.parent is not None and obj.parent.type == "ARMATURE":
        return obj.parent
    return None


def shape_key_names(obj) -> list[str]:
    keys = obj.data.shape_keys if obj.type == "MESH" else None
    return [kb.name for kb in keys.key_blocks[1:]] if keys else []
