"""Baking onto a character named in other pipelines' conventions: weighted VRM presets and CC4
quarter keys receive the mixes `channels.match_channels` chose (headless bpy)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.blender.conftest import bpy

pytestmark = pytest.mark.blender


def test_bake_writes_vrm_presets_and_cc4_quarters(fresh):
    from bl_ext.user_default.emote.emote_blender import bake, blender_compat, channels
    from bl_ext.user_default.emote.model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS

    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.object
    obj.shape_key_add(name="Basis")
    names = ["Face.A", "Blink_L", "Joy", "Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R", "Eye_Blink_R",
             "Hair_Bounce"]
    for n in names:
        obj.shape_key_add(name=n)
    exp_names = list(OPEN_HEAD_CHANNELS)
    rng = np.random.default_rng(0)
    t = 12
    exp = rng.uniform(0, 1, (t, len(exp_names))).astype(np.float32)
    jaw = np.zeros((t, 3), np.float32)
    jaw[:, 0] = np.linspace(0, JAW_OPEN_FULL_RAD, t)
    result = {"exp": exp, "jaw": jaw, "exp_names": exp_names, "fps": 30.0}
    take, cmap = bake.bake_take(obj, result, 5, "line")
    assert cmap.unknown_keys == ["Hair_Bounce"]
    key = obj.data.shape_keys
    slot = blender_compat.find_slot(take.action, key)
    got = {}
    for fc in blender_compat.action_fcurves(take.action, slot):
        co = np.zeros(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        got[fc.data_path] = co.reshape(-1, 2)
    col = exp_names.index
    want = {
        "Face.A": jaw[:, 0] / JAW_OPEN_FULL_RAD,
        "Blink_L": exp[:, col("eyeBlink_L")],
        "Joy": 0.5 * (exp[:, col("mouthSmile_L")] + exp[:, col("mouthSmile_R")]),
        "Mouth_Funnel_Up_L": exp[:, col("mouthFunnel")],
        "Mouth_Funnel_Up_R": exp[:, col("mouthFunnel")],
        "Eye_Blink_R": exp[:, col("eyeBlink_R")],
    }
    assert set(got) == {f'key_blocks["{k}"].value' for k in want}
    for k, v in want.items():
        co = got[f'key_blocks["{k}"].value']
        np.testing.assert_array_equal(co[:, 0], 5 + np.arange(t))
        np.testing.assert_allclose(co[:, 1], v, atol=1e-6, err_msg=k)
    assert channels.identify("Hair_Bounce") is None
