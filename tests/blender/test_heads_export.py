"""Head building matches the head model's own evaluation; exports keep the take's animation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.blender.conftest import MODULE, ROOT, bpy

pytestmark = pytest.mark.blender


def evaluated_vertices(obj) -> np.ndarray:
    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    mesh = ev.to_mesh()
    co = np.zeros(len(mesh.vertices) * 3, dtype=np.float64)
    mesh.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    mw = np.array(obj.matrix_world)
    co = co.reshape(-1, 3)
    return co @ mw[:3, :3].T + mw[:3, 3]


def test_flame_head_deforms_like_the_head_model(fresh, flame_pkl, tmp_path):
    from bl_ext.user_default.emote.emote_blender import bake, heads
    from bl_ext.user_default.emote.model_runtime.heads.flame_pickle import load_flame
    from bl_ext.user_default.emote.model_runtime.heads.head_model import evaluate

    model = load_flame(flame_pkl)
    assert model.pose_dirs is not None  # the synthetic file has pose correctives
    assert bpy.ops.emote.add_flame_head(filepath=str(flame_pkl)) == {"FINISHED"}
    obj = fresh.emote.head
    rig = heads.find_rig(obj)
    assert obj["emote_head_id"] == model.head_id
    assert [b.name for b in rig.data.bones] == model.joint_names
    assert [kb.name for kb in obj.data.shape_keys.key_blocks[1:len(model.exp_names) + 1]] \
        == model.exp_names
    assert obj.get("emote_correctives") == "jaw"
    exp = np.zeros(len(model.exp_names))
    exp[[0, 3, 7]] = [1.5, -2.0, 0.7]
    jaw = np.array([0.3, 0.05, -0.02])
    for i, v in enumerate(exp):
        obj.data.shape_keys.key_blocks[model.exp_names[i]].value = v
    q = bake.jaw_quaternions(jaw[None], heads.bone_rest_matrix(rig, "jaw"))[0]
    rig.pose.bones["jaw"].rotation_quaternion = q.tolist()
    bpy.context.view_layer.update()
    want = heads.to_blender(evaluate(model, exp[None], jaw[None])[0])
    got = evaluated_vertices(obj)
    assert np.abs(got - want).max() < 1e-5
    # The jaw correctives take part: muting them moves the mesh away from the model.
    for kb in obj.data.shape_keys.key_blocks:
        kb.mute = kb.name.startswith("pose_jaw_")
    bpy.context.view_layer.update()
    assert np.abs(evaluated_vertices(obj) - want).max() > 1e-4


def _strip_curves(key) -> dict:
    """{shape key name: values} of the action assigned to a shape-key datablock."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    out = {}
    for fc in blender_compat.assigned_fcurves(key):
        if fc.data_path.startswith("key_blocks"):
            name = fc.data_path.split('"')[1]
            co = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            out[name] = co.reshape(-1, 2)
    return out


def _import_fresh(fmt: str, path: Path, fps: int, fps_base: float):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if MODULE not in bpy.context.preferences.addons:
        bpy.ops.preferences.addon_enable(module=MODULE)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    if fmt == "gltf":
        bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        bpy.ops.import_scene.fbx(filepath=str(path))
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys]
    assert len(meshes) == 1
    return meshes[0]


def test_export_round_trips_and_validates(fresh, flame_pkl, tiny_checkpoint, wav, tmp_path):
    from bl_ext.user_default.emote.emote_blender import export, generate
    from tests.blender.test_extension import setup_scene

    scene = fresh
    head, strip = setup_scene(scene, flame_pkl, tiny_checkpoint, wav)
    take, _cmap, _job = generate.generate_sync(scene, head, strip, str(tiny_checkpoint), "calm",
                                               os.environ["EMOTE_RUNTIME_PYTHON"])
    original = _strip_curves(head.data.shape_keys)
    n = strip.frame_final_end - strip.frame_final_start
    assert len(original) >= 20 and all(len(v) == n for v in original.values())
    glb = export.export_gltf(bpy.context, head, tmp_path / "head.glb")
    fbx = export.export_fbx(bpy.context, head, tmp_path / "head.fbx")
    assert scene.frame_start == 1  # the export left the scene's range as it was
    report = validate_gltf(glb)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]

    for fmt, path in (("gltf", glb), ("fbx", fbx)):
        mesh = _import_fresh(fmt, path, 30, 1.001)
        got = _strip_curves(mesh.data.shape_keys)
        missing = set(original) - set(got)
        assert not missing, f"{fmt}: no animation for {sorted(missing)[:5]}"
        for name, co in original.items():
            g = got[name]
            assert len(g) == len(co), f"{fmt} {name}: {len(g)} keys, expected {len(co)}"
            np.testing.assert_allclose(g[:, 1], co[:, 1], atol=1e-3, err_msg=f"{fmt} {name}")


def validate_gltf(path: Path) -> dict:
    """Khronos glTF validator (npm gltf-validator) report for a .glb."""
    node = shutil.which("node")
    module_dir = os.environ.get("EMOTE_GLTF_VALIDATOR_DIR", str(ROOT / ".cache" / "node"))
    if node is None or not (Path(module_dir) / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("needs node and `./run setup (npm install --prefix .cache/node gltf-validator)` "
                    "(or EMOTE_GLTF_VALIDATOR_DIR)")
    proc = subprocess.run([node, str(ROOT / "tests" / "helpers" / "gltf_validate.cjs"),
                           str(path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NODE_PATH=str(Path(module_dir) / "node_modules")))
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_add_default_head_builds_the_open_head(fresh):
    """The panel's 'Add default head' builds the bundled open head: ARKit shape keys and a jaw."""
    from bl_ext.user_default.emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

    assert bpy.ops.emote.add_default_head.poll()
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    head = bpy.context.scene.emote.head
    assert head is not None and head["emote_head_id"] == "open_head_v1"
    keys = [k.name for k in head.data.shape_keys.key_blocks]
    assert set(OPEN_HEAD_CHANNELS) <= set(keys)
    rig = head.parent
    assert rig is not None and rig.type == "ARMATURE" and "jaw" in rig.data.bones
    assert 4000 <= len(head.data.vertices) <= 12000
    # it arrives smooth-shaded and coloured (skin, lips, brows, eyes), not as a flat grey grid
    smooth = np.zeros(len(head.data.polygons), dtype=bool)
    head.data.polygons.foreach_get("use_smooth", smooth)
    assert smooth.all()
    names = {m.name for m in head.data.materials}
    assert {"emote_skin", "emote_lips", "emote_brows", "emote_iris"} <= names
