"""Retargeting in the bake: the open-head (ARKit) model drives a FLAME head, and a FLAME model
drives the open-head character and a renamed ARKit character, lip gap following (headless)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.blender.conftest import RUNTIME_PY, bpy, run_runtime_py

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def flame100(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame100") / "generic_model.pkl"
    run_runtime_py("import sys; from tests.helpers.synthetic_flame import write_synthetic_flame;"
                   " write_synthetic_flame(sys.argv[1], n_exp=100)", str(path))
    return path


_SPEECH_CODE = """
import sys, numpy as np
from tests.helpers.made_up_line import made_up_line
exp, jaw, _phones = made_up_line()
np.savez(sys.argv[1], exp=exp, jaw=jaw)
"""


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A teacher animation of a made-up line, made in the runtime interpreter (the training
    code is not part of the installed extension that Blender imports)."""
    path = tmp_path_factory.mktemp("speech") / "speech.npz"
    run_runtime_py(_SPEECH_CODE, str(path))
    with np.load(path) as d:
        return d["exp"], d["jaw"]


def _gap(head, exp, jaw):
    from bl_ext.user_default.emote.model_runtime.heads.head_model import evaluate

    v = evaluate(head, exp, jaw)
    return np.linalg.norm(v[:, head.landmark("lip_upper_inner")]
                          - v[:, head.landmark("lip_lower_inner")], axis=-1)


def _baked(obj, take, names, n):
    """Per-frame values of the take's curves for shape keys `names` (zeros where unkeyed)."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    key = obj.data.shape_keys
    out = np.zeros((n, len(names)))
    slot = blender_compat.find_slot(take.action, key)
    for fc in blender_compat.action_fcurves(take.action, slot):
        name = fc.data_path[len('key_blocks["'):-len('"].value')]
        if name in names:
            co = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            out[:, names.index(name)] = co[1::2]
    return out


def _add_flame(path):
    from bl_ext.user_default.emote.emote_blender import heads

    model = heads.load_head_file(path, RUNTIME_PY)
    obj, _rig = heads.build_head(model)
    return obj, model


def test_open_head_model_drives_a_flame_head(fresh, flame100, speech):
    from bl_ext.user_default.emote.emote_blender import bake
    from bl_ext.user_default.emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS
    from bl_ext.user_default.emote.model_runtime.heads.head_model import load_head
    from bl_ext.user_default.emote.model_runtime.heads.open_head import default_head_path

    obj, flame = _add_flame(flame100)
    exp, jaw = speech
    res = {"exp": exp, "jaw": jaw, "exp_names": list(OPEN_HEAD_CHANNELS), "fps": 25.0,
           "head_id": "open_head_v1"}
    take, cmap = bake.bake_take(obj, res, 1, "line")
    assert cmap.retarget == "retargeted from open_head_v1"
    assert len(cmap.shape_keys) == 100 and cmap.unmatched == [] and cmap.jaw_bone == "jaw"
    got = _baked(obj, take, flame.exp_names, len(exp))
    ark = load_head(default_head_path())
    r = np.corrcoef(_gap(ark, exp, jaw), _gap(flame, got, jaw))[0, 1]
    assert r >= 0.9, r


def test_flame_model_drives_arkit_characters(fresh, flame100, speech):
    from bl_ext.user_default.emote.emote_blender import bake, retargeting
    from bl_ext.user_default.emote.model_runtime.heads.head_model import load_head
    from bl_ext.user_default.emote.model_runtime.heads.open_head import default_head_path

    flame_obj, flame = _add_flame(flame100)  # the FLAME model's own head, in the file
    ark = load_head(default_head_path())
    exp, jaw = speech
    f = retargeting.retarget.fit_retarget(ark, flame)  # a FLAME model's output for the line
    f_exp, f_jaw = f.apply(exp, jaw)
    res = {"exp": f_exp, "jaw": f_jaw, "exp_names": list(flame.exp_names), "fps": 25.0,
           "head_id": flame.head_id}
    g_src = _gap(flame, f_exp, f_jaw)

    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    head = bpy.context.scene.emote.head
    take, cmap = bake.bake_take(head, res, 1, "line")
    assert cmap.retarget == f"retargeted from {flame.head_id}"
    got = _baked(head, take, ark.exp_names, len(exp))
    assert got.min() >= 0 and got.max() <= 1
    assert np.corrcoef(g_src, _gap(ark, got, f_jaw))[0, 1] >= 0.9

    # The same character as another pipeline exports it: Apple names behind a prefix, no head id,
    # no jaw bone, the mouth landmarks given by the artist or read off its mouth shapes.
    for given in (True, False):
        other = head.copy()
        other.data = head.data.copy()
        bpy.context.scene.collection.objects.link(other)
        other.parent = None
        other.modifiers.clear()
        del other["emote_head_id"]
        for kb in other.data.shape_keys.key_blocks[1:]:
            kb.name = "Face." + kb.name.replace("_L", "Left").replace("_R", "Right")
        if given:
            other["emote_landmarks"] = json.dumps({n: int(ark.landmark(n))
                                                   for n in ark.landmark_names})
        take, cmap = bake.bake_take(other, res, 1, "line")
        assert cmap.retarget == f"retargeted from {flame.head_id}"
        assert cmap.jaw_bone is None and cmap.jaw_open_key == "Face.jawOpen"
        names = ["Face." + n.replace("_L", "Left").replace("_R", "Right") for n in ark.exp_names]
        got2 = _baked(other, take, names, len(exp))
        assert np.corrcoef(g_src, _gap(ark, got2, f_jaw))[0, 1] >= 0.9


def test_no_retarget_without_the_source_basis(fresh):
    from bl_ext.user_default.emote.emote_blender import bake

    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    head = bpy.context.scene.emote.head
    n, n_exp = 10, 50  # frames; FLAME expression coefficients the open head has no basis for
    res = {"exp": np.zeros((n, n_exp), np.float32), "jaw": np.zeros((n, 3), np.float32),
           "exp_names": [f"exp{i:03d}" for i in range(n_exp)], "fps": 25.0,
           "head_id": "flame2020"}
    _take, cmap = bake.bake_take(head, res, 1, "line")
    assert "not retargeted" in cmap.retarget and "flame2020" in cmap.retarget
    assert len(cmap.unmatched) == n_exp
