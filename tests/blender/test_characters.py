"""Several characters in one scene, each with its own strip, emotion, style and mapping, and a
file from before heads kept their settings (headless, the bundled model)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.blender.conftest import MODULE, StandInStrip, add_sound_strip, bpy, write_wav

pytestmark = pytest.mark.blender


def _ops():
    return sys.modules[MODULE + ".addon_ui.operators"]


def _strips(scene, tmp_path, monkeypatch, specs):
    """Sound strips {name: (seconds, first frame)}; on a wheel without Audaspace, stand-ins
    that the panel finds by the head's strip name."""
    out = {name: add_sound_strip(scene, name, write_wav(tmp_path / f"{name}.wav", sec,
                                                        seed=i), start)
           for i, (name, (sec, start)) in enumerate(specs.items())}
    if any(isinstance(s, StandInStrip) for s in out.values()):
        ops = _ops()
        monkeypatch.setattr(ops, "chosen_strip",
                            lambda ctx: out.get(ops.character(ctx).strip_name))
    return out


def _add_head(scene):
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    return scene.emote.head


def _key_emotion(head, keys):
    for frame, name in keys:
        head.emote.emotion = name
        head.keyframe_insert("emote.emotion", frame=frame)


def _generate(scene, head):
    scene.emote.head = head
    assert bpy.ops.emote.generate() == {"FINISHED"}, scene.emote.last_error


def _curves(head, take) -> dict[str, np.ndarray]:
    """{shape key: values per frame} of a take."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    key = head.data.shape_keys
    out = {}
    for fc in blender_compat.action_fcurves(take.action, blender_compat.find_slot(take.action,
                                                                                  key)):
        if fc.data_path.startswith('key_blocks["'):
            co = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            out[fc.data_path[len('key_blocks["'):-len('"].value')]] = co[1::2]
    return out


def test_two_characters_each_generate_from_their_own_strip_and_emotion(fresh, tmp_path,
                                                                      monkeypatch):
    from bl_ext.user_default.emote.emote_blender import generate

    scene = fresh
    anna, ben = _add_head(scene), _add_head(scene)
    assert anna != ben
    strips = _strips(scene, tmp_path, monkeypatch, {"anna_line": (1.2, 1), "ben_line": (0.8, 60)})
    anna.emote.strip_name, ben.emote.strip_name = "anna_line", "ben_line"
    _key_emotion(anna, [(1, "HAPPY")])
    _key_emotion(ben, [(60, "SAD"), (70, "ANGRY")])
    ben.emote.transition_s = 0.0
    styles = generate.checkpoint_styles("default")
    ben.emote.style = styles[-1]
    assert anna.emote.style == styles[0] != ben.emote.style

    _generate(scene, anna)
    _generate(scene, ben)
    (a_take,), (b_take,) = anna.emote_takes, ben.emote_takes
    assert (a_take.strip, a_take.emotion) == ("anna_line", "anna_line happy")
    assert (b_take.strip, b_take.emotion) == ("ben_line", "ben_line sad-angry")
    assert a_take.first_frame == 1 and b_take.first_frame == 60
    fps = scene.render.fps / scene.render.fps_base
    for head, take, sec in ((anna, a_take, 1.2), (ben, b_take, 0.8)):
        n = len(_curves(head, take)["mouthClose"])
        assert abs(n - sec * fps) <= 1, (head.name, n)
    # the second character's Generate left the first one's take playing
    assert anna.data.shape_keys.animation_data.action == a_take.action
    # a panel switch to Anna shows her strip and emotion again
    scene.emote.head = anna
    assert _ops().chosen_strip(bpy.context).name == strips["anna_line"].name == "anna_line"


def test_the_mapping_is_applied_at_bake_and_kept_for_the_next_generate(fresh, tmp_path,
                                                                      monkeypatch):
    from bl_ext.user_default.emote.emote_blender import characters, face_life
    from bl_ext.user_default.emote.emote_blender.mapping import MappingRow

    scene = fresh
    head = _add_head(scene)
    _strips(scene, tmp_path, monkeypatch, {"line": (1.0, 1)})
    head.emote.strip_name = "line"
    rows = [MappingRow("mouthSmile_L", "mouthSmile_R", 0.5, 0.125), MappingRow("mouthClose", "")]
    characters.set_mapping_rows(head, rows)
    for attempt in range(2):  # a re-Generate keeps the rows and applies them again
        _generate(scene, head)
        take = head.emote_takes[-1]
        raw = face_life.load_raw(take.action)
        smile = raw["exp_names"].index("mouthSmile_L")
        curves = _curves(head, take)
        np.testing.assert_allclose(curves["mouthSmile_R"], 0.5 * raw["exp"][:, smile] + 0.125,
                                   atol=1e-6)
        assert "mouthSmile_L" not in curves and "mouthClose" not in curves
        assert "mouthClose" in scene.emote.unmatched.split(", ")
        assert characters.mapping_rows(head) == rows, attempt
    # a strength re-bake writes the same mapped keys again (neutral strengths: same values)
    face_life.rebake(head, take, {"lower_face": 1.0})
    after = _curves(head, take)
    assert after.keys() == curves.keys()
    np.testing.assert_allclose(after["mouthSmile_R"], curves["mouthSmile_R"], atol=1e-6)
    face_life.rebake(head, take, {"lower_face": 0.5})
    assert not np.allclose(_curves(head, take)["mouthSmile_R"], curves["mouthSmile_R"])
    # Fill from names replaces the rows with name matching's own: the keys are named again
    assert bpy.ops.emote.mapping_fill() == {"FINISHED"}
    filled = {r.channel: r.target for r in characters.mapping_rows(head)}
    assert filled["mouthSmile_L"] == "mouthSmile_L" and filled["mouthClose"] == "mouthClose"
    _generate(scene, head)
    curves = _curves(head, head.emote_takes[-1])
    raw = face_life.load_raw(head.emote_takes[-1].action)
    np.testing.assert_allclose(curves["mouthSmile_L"],
                               raw["exp"][:, raw["exp_names"].index("mouthSmile_L")], atol=1e-6)


def test_presets_round_trip_through_the_panels_file_operators(fresh, tmp_path):
    from bl_ext.user_default.emote.emote_blender import characters, mapping

    head = _add_head(fresh)
    assert bpy.ops.emote.mapping_preset(preset="CC4") == {"FINISHED"}
    rows = characters.mapping_rows(head)
    assert rows == mapping.builtin_preset("CC4")
    head.emote.mapping[0].gain, head.emote.mapping[0].offset = 0.25, -0.5
    rows = characters.mapping_rows(head)
    path = tmp_path / "my_rig.json"
    assert bpy.ops.emote.mapping_save(filepath=str(path)) == {"FINISHED"}
    assert bpy.ops.emote.mapping_row(action="CLEAR") == {"FINISHED"}
    assert characters.mapping_rows(head) == []
    assert bpy.ops.emote.mapping_load(filepath=str(path)) == {"FINISHED"}
    assert characters.mapping_rows(head) == rows
    path.write_text("{}")
    with pytest.raises(RuntimeError, match="not an EMOTE mapping preset"):
        bpy.ops.emote.mapping_load(filepath=str(path))
    assert characters.mapping_rows(head) == rows  # a bad file changes nothing


def _old_style_scene(scene, head):
    """What a file from before per-head settings holds: the settings as the scene's ID
    properties and the emotion keys in the scene's own action."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    s = scene.emote
    s["strip_name"], s["emotion"], s["intensity"], s["transition_s"], s["style"] = (
        "old_line", 2, 0.8, 0.1, 1)
    act = bpy.data.actions.new("SceneAction")
    writer = blender_compat.ActionWriter(act)
    fc = writer.fcurves_for(scene).new("emote.emotion")
    fc.keyframe_points.add(2)
    fc.keyframe_points.foreach_set("co", [10.0, 1.0, 30.0, 2.0])
    for kp in fc.keyframe_points:
        kp.interpolation = "CONSTANT"
    blender_compat.assign(scene, act)  # with its slot on 4.4+


def test_an_older_files_scene_settings_move_onto_its_head_on_load(fresh, tmp_path):
    from bl_ext.user_default.emote.emote_blender import blender_compat, characters, emotion_curve, generate

    scene = fresh
    head = _add_head(scene)
    _old_style_scene(scene, head)
    assert characters.needs_migration(scene)
    path = tmp_path / "old.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))  # the extension's load_post handler runs
    scene = bpy.context.scene
    head = scene.emote.head
    c = head.emote
    styles = generate.checkpoint_styles("default")
    assert (c.strip_name, c.style) == ("old_line", styles[1])
    assert c.emotion == "HAPPY"  # keyed now: the curve's value before its first key
    assert c.intensity == pytest.approx(0.8) and c.transition_s == pytest.approx(0.1)
    assert not characters.needs_migration(scene)
    assert blender_compat.find_fcurve(scene, "emote.emotion") is None
    fc = blender_compat.find_fcurve(head, "emote.emotion")
    co = np.zeros(4)
    fc.keyframe_points.foreach_get("co", co)
    assert co.tolist() == [10.0, 1.0, 30.0, 2.0]
    assert [kp.interpolation for kp in fc.keyframe_points] == ["CONSTANT"] * 2
    assert "moved onto" in scene.emote.bake_notes
    c.transition_s = 0.0
    w, _ = emotion_curve.sample_emotion(scene, np.array([12.0, 40.0]), 30.0)
    assert [emotion_curve.EMOTIONS[i] for i in w.argmax(axis=1)] == ["happy", "sad"]


def test_choosing_another_head_clears_the_last_generates_messages(fresh):
    """An error or 'no target' list is about the head it came from, not the one now shown."""
    first = _add_head(fresh)
    second = _add_head(fresh)
    s = fresh.emote
    s.head = first
    s.last_error, s.unmatched, s.bake_notes = "The strip's audio file is missing", "jawOpen", "x"
    s.head = first  # the same head again: the messages stay
    assert s.last_error and s.unmatched
    s.head = second
    assert (s.last_error, s.unmatched, s.bake_notes) == ("", "", "")
