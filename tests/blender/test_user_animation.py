"""Nothing of the user's is lost in Blender (issue 13): the head's own shape-key animation and the
FLAME rig's pose animation survive Generate, save and reload; job folders are removed; exports
replace old files only on success and say in words why they cannot."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.blender.conftest import MODULE, StandInStrip, add_sound_strip, bpy

pytestmark = pytest.mark.blender

USER_KEYS = [(1.0, 0.25), (12.0, 0.75), (30.0, 0.1)]


def _keys(action, data_path: str, index: int = 0) -> list[tuple[float, float]]:
    from bl_ext.user_default.emote.emote_blender import blender_compat

    for fc in blender_compat.action_fcurves(action):
        if fc.data_path == data_path and fc.array_index == index:
            co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float64)
            fc.keyframe_points.foreach_get("co", co)
            return [(round(f, 4), round(v, 4)) for f, v in co.reshape(-1, 2)]
    return []


def _original_track(id_data, action_name: str):
    from bl_ext.user_default.emote.emote_blender import takes

    tracks = [t for t in id_data.animation_data.nla_tracks if t.name == takes.ORIGINAL_TRACK]
    assert len(tracks) == 1, [t.name for t in id_data.animation_data.nla_tracks]
    strips = list(tracks[0].strips)
    assert [s.name for s in strips] == [action_name] and strips[0].action.name == action_name
    return tracks[0]


def test_users_own_animation_survives_generate_save_and_reload(fresh, flame_pkl,
                                                               tiny_checkpoint, wav, tmp_path,
                                                               monkeypatch):
    from bl_ext.user_default.emote.emote_blender import heads
    from tests.blender.test_extension import setup_scene

    scene = fresh
    head, strip = setup_scene(scene, flame_pkl, tiny_checkpoint, wav, monkeypatch)
    key = head.data.shape_keys
    kb = key.key_blocks[1]
    for frame, value in USER_KEYS:
        kb.value = value
        kb.keyframe_insert("value", frame=frame)
    key.animation_data.action.name = "Blink pass"
    shape_path = f'key_blocks["{kb.name}"].value'
    rig = heads.find_rig(head)
    bone = next(b for b in rig.pose.bones if b.name != "jaw")
    bone.rotation_mode = "XYZ"
    for frame, angle in ((1, 0.0), (20, 0.4)):
        bone.rotation_euler = (0.0, angle, 0.0)
        bone.keyframe_insert("rotation_euler", frame=frame)
    rig.animation_data.action.name = "Head turn"
    rig_path = f'pose.bones["{bone.name}"].rotation_euler'
    rig_keys = _keys(bpy.data.actions["Head turn"], rig_path, 1)
    assert len(rig_keys) == 2

    ops = sys.modules[MODULE + ".addon_ui.operators"]
    jobs = []
    real_start = ops.runtime_client.start

    def recording_start(*args, **kwargs):
        jobs.append(real_start(*args, **kwargs))
        return jobs[-1]

    monkeypatch.setattr(ops.runtime_client, "start", recording_start)
    assert bpy.ops.emote.generate() == {"FINISHED"}, scene.emote.last_error
    take = head.emote_takes[0]
    assert key.animation_data.action == take.action  # the take plays...
    # ...and the job folder with its request, result and logs is gone.
    assert len(jobs) == 1 and not jobs[0].folder.exists()

    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if MODULE not in bpy.context.preferences.addons:
        bpy.ops.preferences.addon_enable(module=MODULE)
    bpy.ops.wm.open_mainfile(filepath=str(blend))

    head = bpy.context.scene.emote.head
    key, rig = head.data.shape_keys, heads.find_rig(head)
    user = bpy.data.actions["Blink pass"]
    assert user.use_fake_user
    assert _keys(user, shape_path) == [(f, round(v, 4)) for f, v in USER_KEYS]
    track = _original_track(key, "Blink pass")
    assert track.mute  # kept, not layered over the take
    pose = bpy.data.actions["Head turn"]
    assert pose.use_fake_user and _keys(pose, rig_path, 1) == rig_keys
    _original_track(rig, "Head turn")

    # A second Generate keeps them once: the take it replaces is a take, not the user's.
    if isinstance(strip, StandInStrip):  # 4.2 wheel: its stand-in's sound went with the file
        add_sound_strip(bpy.context.scene, "line01", wav, 37, monkeypatch)
    assert bpy.ops.emote.generate() == {"FINISHED"}, bpy.context.scene.emote.last_error
    _original_track(key, "Blink pass")
    _original_track(rig, "Head turn")
    assert len(head.emote_takes) == 2


def test_export_without_take_and_failed_export_keep_old_files(fresh, flame_pkl,
                                                              tiny_checkpoint, wav, tmp_path,
                                                              monkeypatch):
    from bl_ext.user_default.emote.emote_blender import export, generate
    from tests.blender.conftest import RUNTIME_PY
    from tests.blender.test_extension import setup_scene

    scene = fresh
    head, strip = setup_scene(scene, flame_pkl, tiny_checkpoint, wav)
    with pytest.raises(ValueError, match="has no take to export yet"):
        export.export_fbx(bpy.context, head, tmp_path / "head.fbx")
    assert not (tmp_path / "head.fbx").exists()
    generate.generate_sync(scene, head, strip, str(tiny_checkpoint), "calm", RUNTIME_PY)
    path = export.export_fbx(bpy.context, head, tmp_path / "head.fbx")
    old = path.read_bytes()
    assert len(old) > 1000 and path.stat().st_mode & 0o777 != 0o600

    class BrokenExporter:  # fails the way a Blender exporter does: a traceback in the text
        @staticmethod
        def fbx(**kwargs):
            open(kwargs["filepath"], "wb").write(b"half an fbx")
            raise RuntimeError("Error: Python: Traceback (most recent call last):\n"
                               '  File "export_fbx_bin.py", line 3000, in save\n'
                               "ValueError: mesh has no polygons\n")

    class Ops:
        export_scene = BrokenExporter

    monkeypatch.setattr(bpy, "ops", Ops)
    with pytest.raises(export.ExportFailed) as info:
        export.export_fbx(bpy.context, head, path)
    monkeypatch.undo()
    assert "Traceback" not in str(info.value) and "mesh has no polygons" in str(info.value)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.fbx"]  # no staging left


def test_results_far_outside_any_models_range_are_refused_before_baking(tmp_path):
    from bl_ext.user_default.emote.emote_blender import bake
    from bl_ext.user_default.emote.model_runtime.errors import RuntimeFailure

    exp = np.zeros((5, 2), np.float32)
    exp[3, 1] = 1e6  # finite, but no model makes this: baking it would wreck the head
    wild = {"exp": exp, "jaw": np.zeros((5, 3), np.float32), "exp_names": ["a", "b"]}
    with pytest.raises(RuntimeFailure, match="far outside") as err:
        bake.bake_take(None, wild, 1, "x")  # refused before the head is even looked at
    assert err.value.kind == "bad_result" and "nothing was baked" in err.value.message
    wild["exp"], wild["jaw"] = np.zeros((5, 2), np.float32), np.zeros((5, 3), np.float32)
    wild["jaw"][0, 0] = 20.0  # radians
    with pytest.raises(RuntimeFailure, match="jaw up to 20"):
        bake.check_plausible(wild)
    wild["jaw"][0, 0] = 0.3
    bake.check_plausible(wild)  # an ordinary result passes


def test_a_take_holds_at_rest_the_keys_the_earlier_animation_moved(fresh, flame_pkl,
                                                                    tiny_checkpoint, wav,
                                                                    monkeypatch):
    """A shape key the model does not drive but the head's own action moved must not keep
    whatever value that action left when the take replaced it: the take keys it at rest."""
    from tests.blender.test_extension import setup_scene

    scene = fresh
    head, _strip = setup_scene(scene, flame_pkl, tiny_checkpoint, wav, monkeypatch)
    kb = head.shape_key_add(name="Corrective", from_mix=False)
    key = head.data.shape_keys
    for frame, value in ((1, 0.7), (60, 0.9)):
        kb.value = value
        kb.keyframe_insert("value", frame=frame)
    user = key.animation_data.action
    scene.frame_set(30)
    assert kb.value > 0.7  # what the user's action left
    assert bpy.ops.emote.generate() == {"FINISHED"}, scene.emote.last_error
    take = head.emote_takes[0]
    assert key.animation_data.action == take.action
    held = _keys(take.action, 'key_blocks["Corrective"].value')
    assert len(held) == 1 and held[0][1] == 0.0
    for frame in (1, 30, 90):
        scene.frame_set(frame)
        assert key.key_blocks["Corrective"].value == 0.0
    assert _keys(user, 'key_blocks["Corrective"].value') == [(1.0, 0.7), (60.0, 0.9)]
