"""Headless acceptance tests of the Blender extension (bpy wheel): heads, Generate, takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.blender.conftest import (FPS, FPS_BASE, RUNTIME_PY, add_sound_strip, bpy,
                                    reset_scene)

pytestmark = pytest.mark.blender

STRIP_FRAME = 37  # where the sound strip starts
TRIM = 5  # frames trimmed off the strip's start for the second take
HAPPY_FRAME, SAD_FRAME = STRIP_FRAME, 60  # the emotion keyframes
QUAT = 4  # components of a bone's rotation quaternion
POSED_BONES = ("neck", "jaw", "eye_left", "eye_right")  # the FLAME rig's animated bones
JAW_CORRECTIVES = 3 * 3  # shape keys driven by the entries of (R_jaw - I)


def snapshot() -> dict:
    """Everything a Generate may touch: actions and keys, shape keys, assignments, NLA, takes."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    scene = bpy.context.scene
    scene.frame_set(scene.frame_current)  # animated values settle before we read them
    snap = {"actions": {}, "objects": {}}
    for act in bpy.data.actions:
        curves = {}
        for fc in blender_compat.action_fcurves(act):
            co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
            fc.keyframe_points.foreach_get("co", co)
            curves[(fc.data_path, fc.array_index)] = co.tolist()
        snap["actions"][act.name] = curves
    for obj in bpy.data.objects:
        ent = {"takes": [t.name for t in obj.emote_takes]}
        targets = [obj]
        if obj.type == "MESH" and obj.data.shape_keys:
            key = obj.data.shape_keys
            ent["keys"] = [(kb.name, round(kb.value, 6)) for kb in key.key_blocks]
            targets.append(key)
        for t in targets:
            ad = t.animation_data
            ent[t.name] = None if ad is None else (
                ad.action.name if ad.action else None, [tr.name for tr in ad.nla_tracks])
        snap["objects"][obj.name] = ent
    return snap


def setup_scene(scene, flame_pkl, checkpoint, wav, monkeypatch=None):
    """Head from the FLAME file, sound strip at STRIP_FRAME, emotion happy then sad."""
    assert bpy.ops.emote.add_flame_head(filepath=str(flame_pkl)) == {"FINISHED"}
    head = scene.emote.head
    strip = add_sound_strip(scene, "line01", wav, STRIP_FRAME, monkeypatch)
    scene.emote.model_source, scene.emote.checkpoint_dir = "FOLDER", str(checkpoint)
    s = head.emote  # the head's own settings
    s.style, s.transition_s = "calm", 0.2
    s.emotion = "HAPPY"
    head.keyframe_insert("emote.emotion", frame=HAPPY_FRAME)
    s.emotion = "SAD"
    head.keyframe_insert("emote.emotion", frame=SAD_FRAME)
    s.emotion = "NEUTRAL"  # today's value differs from the keyframes: sampling must ignore it
    return head, strip


def take_curves(head, take):
    from bl_ext.user_default.emote.emote_blender import blender_compat, heads

    key, rig = head.data.shape_keys, heads.find_rig(head)
    out = {}
    for target, act in ((key, take.action), (rig, take.rig_action)):
        slot = blender_compat.find_slot(act, target)
        for fc in blender_compat.action_fcurves(act, slot):
            co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float64)
            fc.keyframe_points.foreach_get("co", co)
            out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return out


def test_generate_bakes_take_with_emotion_track(fresh, flame_pkl, tiny_checkpoint, wav):
    from bl_ext.user_default.emote.emote_blender import generate

    scene = fresh
    head, strip = setup_scene(scene, flame_pkl, tiny_checkpoint, wav)
    assert abs(scene.render.fps / scene.render.fps_base - 29.97) < 0.01  # NTSC, fractional
    n_frames = strip.frame_final_end - strip.frame_final_start
    take, cmap, job = generate.generate_sync(scene, head, strip, str(tiny_checkpoint), "calm",
                                             RUNTIME_PY)
    assert cmap.unmatched == ["eyeBlink_L", "eyeBlink_R"]  # a FLAME head has no blink keys
    n_exp = (len(head.data.shape_keys.key_blocks) - 1  # the Basis key is not animated
             - JAW_CORRECTIVES * bool(head.get("emote_correctives")))
    curves = take_curves(head, take)
    assert len(curves) == n_exp + QUAT * len(POSED_BONES)  # expression keys, bone quaternions
    assert {path for path, _ in curves if path.startswith("pose.")} == {
        f'pose.bones["{b}"].rotation_quaternion' for b in POSED_BONES}
    for co in curves.values():
        assert co.shape == (n_frames, 2)
        np.testing.assert_array_equal(co[:, 0], STRIP_FRAME + np.arange(n_frames))
    # The emotion track the runtime read: happy until the keyframe at 60, sad after.
    req = json.loads((job.folder / "request.json").read_text())
    assert req["frame_count"] == n_frames and req["identity"] == "calm"
    assert abs(req["fps"] - FPS / FPS_BASE) < 1e-5  # fps_base is stored as float32
    w = np.array(req["emotion"]["weights"])
    names = req["emotion"]["names"]
    frames = STRIP_FRAME + np.arange(n_frames)
    dominant = np.array(names)[np.argmax(w, axis=1)]
    change = frames[np.nonzero(dominant == "sad")[0][0]]
    assert abs(change - SAD_FRAME) <= 1
    assert set(dominant[frames < SAD_FRAME - 3]) == {"happy"}
    assert set(dominant[frames > SAD_FRAME + 3]) == {"sad"}
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    # Baked values equal the runtime's result (jaw through the bone's quaternion).
    res = np.load(job.out_path)
    exp_col = {n: i for i, n in enumerate(res["exp_names"])}
    name = head.data.shape_keys.key_blocks[1].name
    np.testing.assert_allclose(curves[(f'key_blocks["{name}"].value', 0)][:, 1],
                               res["exp"][:, exp_col[name]], atol=1e-6)
    qw = curves[('pose.bones["jaw"].rotation_quaternion', 0)][:, 1]
    np.testing.assert_allclose(2 * np.arccos(np.clip(qw, -1, 1)),
                               np.linalg.norm(res["jaw"], axis=1), atol=1e-4)
    assert take.name.startswith("line01 happy-sad take 1")


def reopen(blend: Path, wav: Path, monkeypatch):
    """Open a saved test file; returns (scene, head, strip). A Blender built without Audaspace
    saves no sound strip: a StandInStrip takes its place again."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    editor = scene.sequence_editor
    strips = [s for s in blender_compat.all_strips(editor) if s.name == "line01"] if editor else []
    strip = strips[0] if strips else add_sound_strip(scene, "line01", wav, STRIP_FRAME,
                                                     monkeypatch)
    return scene, scene.emote.head, strip


@pytest.fixture(scope="module")
def one_take(installed, flame_pkl, tiny_checkpoint, wav, tmp_path_factory) -> Path:
    """A .blend with the FLAME head, the strip, the emotion keys and one take (the operator's)."""
    scene = reset_scene()
    with pytest.MonkeyPatch.context() as mp:
        setup_scene(scene, flame_pkl, tiny_checkpoint, wav, mp)
        assert bpy.ops.emote.generate() == {"FINISHED"}, scene.emote.last_error
    blend = tmp_path_factory.mktemp("takes") / "one_take.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return blend


@pytest.fixture(scope="module")
def two_takes(one_take, tiny_checkpoint, wav) -> tuple[Path, dict]:
    """one_take plus a second take of the strip trimmed by TRIM frames, made through the warm
    server; returns that .blend and the first take's curves from before the second one."""
    from bl_ext.user_default.emote.emote_blender import generate

    with pytest.MonkeyPatch.context() as mp:
        scene, head, strip = reopen(one_take, wav, mp)
        take1 = take_curves(head, head.emote_takes[0])
        strip.frame_offset_start = TRIM
        generate.generate_sync(scene, head, strip, str(tiny_checkpoint), "default", RUNTIME_PY,
                               use_server=True)
    blend = one_take.with_name("two_takes.blend")
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return blend, take1


def test_second_take_starts_at_the_trim_and_keeps_the_first(two_takes, wav, monkeypatch):
    from bl_ext.user_default.emote.emote_blender import takes

    blend, take1_before = two_takes
    _scene, head, _strip = reopen(blend, wav, monkeypatch)
    assert [t.number for t in head.emote_takes] == [1, 2]
    assert takes.active(head).name == head.emote_takes[1].name
    c2 = take_curves(head, head.emote_takes[1])
    assert next(iter(c2.values()))[0, 0] == STRIP_FRAME + TRIM
    take1 = take_curves(head, head.emote_takes[0])
    assert take1.keys() == take1_before.keys()
    for k in take1_before:
        np.testing.assert_array_equal(take1[k], take1_before[k])


def test_switching_takes_in_the_list_changes_what_plays(two_takes, wav, monkeypatch):
    _scene, head, _strip = reopen(two_takes[0], wav, monkeypatch)
    take1, take2 = head.emote_takes
    head.emote_active_take = 0
    assert head.data.shape_keys.animation_data.action == take1.action
    head.emote_active_take = 1
    assert head.data.shape_keys.animation_data.action == take2.action
    tracks = [t.name for t in head.data.shape_keys.animation_data.nla_tracks]
    assert tracks == [take1.name, take2.name]  # the other take stays
    assert all(t.mute for t in head.data.shape_keys.animation_data.nla_tracks)
    assert take1.action.use_fake_user


def test_cancel_kills_the_runtime_and_changes_nothing(one_take, tiny_checkpoint, wav,
                                                      monkeypatch):
    from bl_ext.user_default.emote.emote_blender import generate, runtime_client
    from bl_ext.user_default.emote.model_runtime.errors import RuntimeFailure

    scene, head, strip = reopen(one_take, wav, monkeypatch)
    before = snapshot()
    prepared = generate.prepare(scene, head, strip, str(tiny_checkpoint), "default")
    job = runtime_client.start(prepared.request, RUNTIME_PY, use_server=False)
    job.poll()
    job.cancel()
    with pytest.raises(RuntimeFailure) as err:
        generate.finish(head, prepared, job)
    assert err.value.kind == "cancelled" and "unchanged" in err.value.message
    assert job._proc.poll() is not None
    assert snapshot() == before


def test_unreadable_audio_through_the_operator_changes_nothing(one_take, wav, tmp_path,
                                                               monkeypatch):
    scene, _head, strip = reopen(one_take, wav, monkeypatch)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    strip.sound.filepath = str(bad)
    before = snapshot()
    with pytest.raises(RuntimeError, match="could not be read as audio"):
        bpy.ops.emote.generate()  # an operator's ERROR report raises in background mode
    assert snapshot() == before
    assert "broken.wav" in scene.emote.last_error


def test_takes_survive_save_and_reload(two_takes, wav, tmp_path, monkeypatch):
    from tests.blender.conftest import MODULE

    reopen(two_takes[0], wav, monkeypatch)
    blend = tmp_path / "takes.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    saved = snapshot()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    head = bpy.context.scene.emote.head
    assert [t.number for t in head.emote_takes] == [1, 2]
    assert snapshot() == saved


def test_deleting_the_active_take_removes_its_action(two_takes, wav, monkeypatch):
    _scene, head, _strip = reopen(two_takes[0], wav, monkeypatch)
    name2 = head.emote_takes[1].name
    assert bpy.ops.emote.take_delete() == {"FINISHED"}
    assert [t.number for t in head.emote_takes] == [1]
    assert name2 not in bpy.data.actions
    assert head.data.shape_keys.animation_data.action == head.emote_takes[0].action


def test_manifest_validates_with_blenders_own_tool():
    """blender_manifest.toml passes Blender's extension validator (the same check the build runs)."""
    import subprocess
    import sys

    from tests.blender.conftest import ROOT, blender_ext_script

    proc = subprocess.run([sys.executable, str(blender_ext_script()), "validate", str(ROOT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
