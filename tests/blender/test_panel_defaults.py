"""The panel works with its defaults: a new user's first Generate, and buttons that say why not."""

from __future__ import annotations

import sys

import pytest

from tests.blender.conftest import MODULE, ROOT, add_sound_strip, bpy, write_wav

pytestmark = pytest.mark.blender

SAMPLE_LINE = ROOT / "assets" / "dialogue" / "line_01.wav"


def _ops():
    return sys.modules[MODULE + ".addon_ui.operators"]


def test_first_generate_with_every_default_uses_the_bundled_model(fresh, tmp_path,
                                                                   monkeypatch):
    """Add default head, a sound strip, Generate: no setting touched (style left as it comes)."""
    from bl_ext.user_default.emote.emote_blender import generate

    scene = fresh
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    wav = write_wav(tmp_path / "first.wav", 1.5)
    add_sound_strip(scene, "first", wav, 1, monkeypatch)
    s = scene.emote
    assert s.model_source == "DEFAULT"
    styles = generate.checkpoint_styles("default")
    assert styles, "the bundled model lists its speaking styles"
    assert s.head.emote.style == styles[0]  # the enum's default is the model's first style
    assert bpy.ops.emote.generate.poll()
    assert bpy.ops.emote.generate() == {"FINISHED"}, s.last_error
    assert s.last_error == ""
    assert len(s.head.emote_takes) == 1


def test_style_is_a_choice_among_the_chosen_models_styles(fresh, tiny_checkpoint):
    s = fresh.emote
    s.model_source, s.checkpoint_dir = "FOLDER", str(tiny_checkpoint)
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    c = s.head.emote  # the style is the head's, its choices the scene's model's
    with pytest.raises(TypeError):
        c.style = "no such style"  # an enum refuses free text
    c.style = "calm"
    assert c.style == "calm"


def test_default_model_dir_override_changes_the_style_list(tmp_path, monkeypatch,
                                                            tiny_checkpoint):
    from bl_ext.user_default.emote.emote_blender import generate

    monkeypatch.setenv("EMOTE_DEFAULT_MODEL_DIR", str(tiny_checkpoint))
    assert generate.checkpoint_styles("default") == ["default", "calm"]


def test_generate_is_greyed_out_with_the_reason(fresh, tmp_path, monkeypatch):
    ops = _ops()
    scene = fresh
    assert not bpy.ops.emote.generate.poll()
    assert "head" in ops.generate_blocker(bpy.context).lower()
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    assert "sequencer" in ops.generate_blocker(bpy.context).lower()
    scene.emote.head.emote.strip_name = "missing strip"
    assert "missing strip" in ops.generate_blocker(bpy.context)
    scene.emote.head.emote.strip_name = ""
    add_sound_strip(scene, "line", write_wav(tmp_path / "l.wav", 1.0), 1, monkeypatch)
    monkeypatch.setenv("EMOTE_RUNTIME_PYTHON", str(tmp_path / "no" / "python"))
    assert "does not exist" in ops.generate_blocker(bpy.context)
    assert not bpy.ops.emote.generate.poll()


def test_export_buttons_need_a_take(fresh):
    assert bpy.ops.emote.add_default_head() == {"FINISHED"}
    assert not bpy.ops.emote.export_gltf.poll()
    assert not bpy.ops.emote.export_fbx.poll()
