"""Headless: blinks, gaze and head motion baked into a take on the bundled head, the switches,
and the strength controls re-baking only the keys they should, as one undo step."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from tests.blender.conftest import ROOT, bpy
from tests.blender import test_retarget_bake as _retarget_tests

flame100 = _retarget_tests.flame100  # fixtures shared with the retargeting tests
speech = _retarget_tests.speech

pytestmark = pytest.mark.blender

LINE = ROOT / "assets" / "dialogue" / "line_01.wav"
UPPER = ("browDown_L", "browDown_R", "browInnerUp", "browOuterUp_L", "browOuterUp_R",
         "cheekSquint_L", "cheekSquint_R", "noseSneer_L", "noseSneer_R", "eyeSquint_L",
         "eyeSquint_R", "eyeWide_L", "eyeWide_R")


def _speech(tmp_path, seconds: float):
    """Real speech: the sample dialogue line repeated to `seconds`."""
    x, sr = sf.read(LINE, dtype="float32")
    path = tmp_path / f"line_{int(seconds)}s.wav"
    sf.write(path, np.tile(x, int(np.ceil(seconds * sr / x.size)))[:int(seconds * sr)], sr,
             subtype="PCM_16")
    return path


def _default_head_take(scene, wav, monkeypatch=None):
    from bl_ext.user_default.emote.emote_blender import generate
    from tests.blender.conftest import add_sound_strip

    if scene.emote.head is None:
        assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    strip = add_sound_strip(scene, "line", wav, 1, monkeypatch)
    take, cmap, _job = generate.generate_sync(scene, scene.emote.head, strip, "default", "",
                                              os.environ["EMOTE_RUNTIME_PYTHON"])
    return scene.emote.head, take, cmap, strip


def _curves(head, take) -> dict:
    from tests.blender.test_extension import take_curves

    return {k: v[:, 1] for k, v in take_curves(head, take).items()}


def _quats(curves: dict, bone: str) -> np.ndarray:
    return np.stack([curves[(f'pose.bones["{bone}"].rotation_quaternion', i)]
                     for i in range(4)], axis=1)


def _angle_between(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    return np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(q0 * q1, axis=1)), 0, 1)))


def test_baked_take_blinks_looks_and_moves_and_switches_turn_it_off(fresh, tmp_path):
    from bl_ext.user_default.emote.model_runtime import alive

    scene = fresh
    fps = scene.render.fps / scene.render.fps_base
    head, take, cmap, strip = _default_head_take(scene, _speech(tmp_path, 60.0))
    assert "eyeBlink_L" not in cmap.unmatched
    c = _curves(head, take)
    n = len(c[('key_blocks["eyeBlink_L"].value', 0)])
    minutes = n / fps / 60
    assert abs(minutes - 1) < 0.01
    assert 10 <= alive.count_blinks(c[('key_blocks["eyeBlink_L"].value', 0)]) / minutes <= 20
    lag = int(round(0.2 * fps))
    for eye in ("eye_left", "eye_right"):
        q = _quats(c, eye)
        moved = _angle_between(q[lag:], q[:-lag]) > 2.0
        shifts = int(np.sum(moved[1:] & ~moved[:-1]) + moved[0])
        assert shifts >= n / fps / 3  # a gaze shift every 3 s at least
    neck = _quats(c, "neck")
    neck_deg = np.degrees(2 * np.arccos(np.clip(np.abs(neck[:, 0]), 0, 1)))
    assert 1.0 < neck_deg.max() <= 6.0
    # The pose follows the keys: mid-take the neck bone is turned.
    k = int(np.argmax(neck_deg))
    scene.frame_set(take.first_frame + k)
    rig = head.parent
    got = np.array(rig.pose.bones["neck"].rotation_quaternion)
    np.testing.assert_allclose(got, neck[k], atol=1e-5)

    s = scene.emote
    s.use_blinks = s.use_gaze = s.use_head_motion = False
    from bl_ext.user_default.emote.emote_blender import generate

    off, _cmap, job = generate.generate_sync(scene, head, strip, "default", "",
                                             os.environ["EMOTE_RUNTIME_PYTHON"])
    import json
    assert json.loads((job.folder / "request.json").read_text())["alive"] == {
        "blinks": 0.0, "gaze": 0.0, "head_motion": 0.0, "seed": 0}
    c_off = _curves(head, off)
    assert alive.count_blinks(c_off[('key_blocks["eyeBlink_L"].value', 0)]) == 0
    for bone in ("neck", "eye_left", "eye_right"):
        np.testing.assert_allclose(_quats(c_off, bone), [[1, 0, 0, 0]] * n, atol=1e-7)
    scene.frame_set(take.first_frame + k)
    np.testing.assert_allclose(np.array(rig.pose.bones["neck"].rotation_quaternion),
                               [1, 0, 0, 0], atol=1e-6)


def _all_curves() -> dict:
    from bl_ext.user_default.emote.emote_blender import blender_compat

    out = {}
    for act in bpy.data.actions:
        for fc in blender_compat.action_fcurves(act):
            co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float64)
            fc.keyframe_points.foreach_get("co", co)
            out[(act.name, fc.data_path, fc.array_index)] = co
    return out


def _others() -> dict:
    """Everything but the keys: takes, assignments, NLA, actions' custom properties."""
    out = {}
    for obj in bpy.data.objects:
        ent = [t.name for t in obj.emote_takes], obj.emote_active_take
        for t in [obj] + ([obj.data.shape_keys] if obj.type == "MESH" else []):
            ad = t.animation_data
            ent += (None,) if ad is None else ((ad.action.name if ad.action else None,
                                               [tr.name for tr in ad.nla_tracks]),)
        out[obj.name] = ent
    out["actions"] = sorted((a.name, sorted(a.keys())) for a in bpy.data.actions)
    return out


def test_strengths_change_only_their_keys_and_rebake_is_one_undo_step(fresh, tmp_path):
    from bl_ext.user_default.emote.emote_blender import face_life

    scene = fresh
    wav = _speech(tmp_path, 4.0)
    _default_head_take(scene, wav)
    head, take, _cmap, _strip = _default_head_take(scene, wav)
    raw = face_life.load_raw(take.action)
    names = raw["exp_names"]
    before, others = _all_curves(), _others()

    scene.emote.upper_face = 0.5  # the slider's update re-bakes the active take
    after = _all_curves()
    assert after.keys() == before.keys() and _others() == others
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    want = {(take.action.name, f'key_blocks["{n}"].value', 0) for n in UPPER}
    assert changed == want
    for n in UPPER:
        k = (take.action.name, f'key_blocks["{n}"].value', 0)
        np.testing.assert_array_equal(after[k][0::2], before[k][0::2])  # frames stay
        np.testing.assert_allclose(after[k][1::2], 0.5 * raw["exp"][:, names.index(n)],
                                   atol=1e-6)

    # Lower face: mouth keys and the jaw bone; the first take and the blinks stay.
    scene.emote.upper_face = 1.0
    np.testing.assert_array_equal(np.concatenate(list(_all_curves().values())),
                                  np.concatenate(list(before.values())))
    bpy.ops.ed.undo_push(message="base")
    scene.emote.lower_face = 0.6
    tuned = _all_curves()
    changed = {k for k in before if not np.array_equal(before[k], tuned[k])}
    assert all(k[0] == take.action.name or (take.rig_action and k[0] == take.rig_action.name)
               for k in changed)
    paths = {k[1] for k in changed}
    assert 'pose.bones["jaw"].rotation_quaternion' in paths
    assert any(p.startswith('key_blocks["mouth') for p in paths)
    assert not any("eyeBlink" in p or "brow" in p or "neck" in p or "eye_" in p for p in paths)
    bpy.ops.ed.undo_push(message="tuned")
    # The operator re-applies the controls as one undo step: one undo is back at "tuned".
    scene.emote.lower_face = 0.3
    # undo=True: push the operator's undo step as a click on the panel's button does
    assert bpy.ops.emote.rebake_take("EXEC_DEFAULT", True) == {"FINISHED"}
    assert not np.array_equal(np.concatenate(list(_all_curves().values())),
                              np.concatenate(list(tuned.values())))
    assert bpy.ops.ed.undo() == {"FINISHED"}
    back = _all_curves()
    assert back.keys() == tuned.keys()
    for k in tuned:
        np.testing.assert_array_equal(back[k], tuned[k], err_msg=str(k))
    assert abs(bpy.context.scene.emote.lower_face - 0.6) < 1e-6


def test_flame_channels_get_their_region_from_the_motion_of_their_shape_keys(
        fresh, flame_pkl):
    """A key moving only the top of the head counts as upper face, one moving only the chin as
    lower face; the model's own keys fall in between."""
    from bl_ext.user_default.emote.emote_blender import face_life, heads

    assert bpy.ops.emote.add_flame_head(filepath=str(flame_pkl)) == {"FINISHED"}
    head = fresh.emote.head
    rig = heads.find_rig(head)
    eye_z = rig.data.bones["eye_left"].head_local[2]
    n = len(head.data.vertices)
    basis = np.empty(3 * n)
    head.data.shape_keys.reference_key.data.foreach_get("co", basis)
    basis = basis.reshape(n, 3)
    z = basis[:, 2]
    for name, sel in (("exp98", z > eye_z), ("exp99", z < np.percentile(z, 10))):
        kb = head.shape_key_add(name=name, from_mix=False)
        co = basis.copy()
        co[sel, 1] -= 0.002
        kb.data.foreach_set("co", co.ravel())
    names = [kb.name for kb in head.data.shape_keys.key_blocks[1:] if kb.name.startswith("exp")]
    shares = face_life.upper_shares(head, names + ["browInnerUp"])
    assert set(shares) == set(names)  # ARKit names go by name
    assert shares["exp98"] == 1.0 and shares["exp99"] == 0.0
    assert all(0 < shares[nm] < 1 for nm in names[:-2])


def test_gaze_and_head_turn_the_way_the_contract_says(fresh):
    """+yaw looks to the character's left (+x), +pitch up, +x head rotation nods the face down:
    checked on the evaluated bones of the bundled head (its face looks along Blender's -y)."""
    from bl_ext.user_default.emote.emote_blender import bake

    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    head = fresh.emote.head
    rig = head.parent
    n = 3
    names = [kb.name for kb in head.data.shape_keys.key_blocks[1:]]
    result = {"fps": 25.0, "exp_names": names, "exp": np.zeros((n, len(names)), np.float32),
              "jaw": np.zeros((n, 3), np.float32),
              "gaze": np.array([[0.2, 0.0], [0.0, 0.2], [0.0, 0.0]], np.float32),
              "head": np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.1, 0.0, 0.0]], np.float32)}
    bake.bake_take(head, result, 1, "dir", strengths={})

    def forward(bone: str, frame: int) -> np.ndarray:
        fresh.frame_set(frame)
        pb = rig.pose.bones[bone]
        rot = np.array(pb.matrix.to_3x3()) @ np.array(pb.bone.matrix_local.to_3x3()).T
        return rot @ np.array([0.0, -1.0, 0.0])  # the face's forward direction

    for eye in ("eye_left", "eye_right"):
        np.testing.assert_allclose(forward(eye, 1), [np.sin(0.2), -np.cos(0.2), 0], atol=1e-5)
        np.testing.assert_allclose(forward(eye, 2), [0, -np.cos(0.2), np.sin(0.2)], atol=1e-5)
    np.testing.assert_allclose(forward("neck", 3), [0, -np.cos(0.1), -np.sin(0.1)], atol=1e-5)
    np.testing.assert_allclose(forward("neck", 1), [0, -1, 0], atol=1e-6)


def test_a_saved_and_reopened_take_can_still_be_tuned(fresh, tmp_path):
    """The raw result travels with the .blend: after reopening, a strength re-bakes the take."""
    from bl_ext.user_default.emote.emote_blender import face_life, takes

    head, take, _cmap, _strip = _default_head_take(fresh, _speech(tmp_path, 3.0))
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    head = bpy.context.scene.emote.head
    take = takes.active(head)
    raw = face_life.load_raw(take.action)
    i = raw["exp_names"].index("browInnerUp")
    bpy.context.scene.emote.upper_face = 0.25
    from bl_ext.user_default.emote.emote_blender import blender_compat

    fc = next(f for f in blender_compat.action_fcurves(take.action, blender_compat.find_slot(
        take.action, head.data.shape_keys)) if f.data_path == 'key_blocks["browInnerUp"].value')
    co = np.zeros(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    np.testing.assert_allclose(co[1::2], 0.25 * raw["exp"][:, i], atol=1e-6)


def _take_curve_count(head, take) -> int:
    from tests.blender.test_extension import take_curves

    return len(take_curves(head, take))


def test_flame_model_blinks_survive_retargeting_and_rebake_matches_the_bake(fresh, flame100,
                                                                              speech):
    """A FLAME model's result (blinks appended) on the ARKit default head: retargeted, the
    blinks land on its eyeBlink keys, and a neutral re-bake rewrites every curve of the take to
    the very values the bake wrote (curve_values mirrors bake_take)."""
    from bl_ext.user_default.emote.emote_blender import bake, face_life, retargeting
    from bl_ext.user_default.emote.model_runtime.heads.head_model import load_head
    from bl_ext.user_default.emote.model_runtime.heads.open_head import default_head_path
    from tests.blender.test_retarget_bake import _add_flame

    _flame_obj, flame = _add_flame(flame100)
    ark = load_head(default_head_path())
    exp, jaw = speech
    f_exp, f_jaw = retargeting.retarget.fit_retarget(ark, flame).apply(exp, jaw)
    n = len(f_exp)
    blink = np.zeros(n, np.float32)
    blink[10:13] = [0.6, 1.0, 0.5]
    res = {"exp": np.c_[f_exp, blink, blink], "jaw": f_jaw, "fps": 25.0,
           "exp_names": list(flame.exp_names) + ["eyeBlink_L", "eyeBlink_R"],
           "head_id": flame.head_id, "head": np.zeros((n, 3)), "gaze": np.zeros((n, 2))}
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    head = bpy.context.scene.emote.head
    take, cmap = bake.bake_take(head, res, 1, "line", strengths={})
    assert cmap.retarget == f"retargeted from {flame.head_id}"
    c = _curves(head, take)
    lid = c[('key_blocks["eyeBlink_L"].value', 0)]
    assert lid[11] == pytest.approx(1.0) and lid[10] >= 0.6 and lid[12] >= 0.5
    before = _all_curves()
    assert face_life.rebake(head, take, {}) == _take_curve_count(head, take)
    after = _all_curves()
    for k in before:
        np.testing.assert_allclose(after[k], before[k], atol=1e-6, err_msg=str(k))
    assert face_life.rebake(head, take, {"lower_face": 0.5}) == _take_curve_count(head, take)
    assert not np.allclose(_curves(head, take)[('key_blocks["jawOpen"].value', 0)],
                           c[('key_blocks["jawOpen"].value', 0)])


def test_rebake_with_the_bake_strengths_rewrites_every_curve_unchanged(fresh, tmp_path):
    from bl_ext.user_default.emote.emote_blender import face_life

    head, take, _cmap, _strip = _default_head_take(fresh, _speech(tmp_path, 3.0))
    before = _all_curves()
    assert face_life.rebake(head, take, {}) == _take_curve_count(head, take)
    after = _all_curves()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=str(k))
