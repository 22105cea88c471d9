"""Emotion and intensity as Blender evaluates them: keys on the head object pushed down into NLA
strips and drivers are honoured, the current frame is restored, plain keys keep the fast F-curve
path (headless)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.blender.conftest import bpy

pytestmark = pytest.mark.blender


def _head(scene):
    """A head object whose own settings hold the emotion curve (the panel's head)."""
    head = bpy.data.objects.new("Head", bpy.data.meshes.new("Head"))
    scene.collection.objects.link(head)
    scene.emote.head = head
    return head


def _key_emotions(owner, keys):
    for frame, name in keys:
        owner.emote.emotion = name
        owner.keyframe_insert("emote.emotion", frame=frame)


def _push_down(owner, start):
    """What the NLA editor's Push Down does, with the strip then moved to `start`."""
    ad = owner.animation_data
    action = ad.action
    track = ad.nla_tracks.new()
    strip = track.strips.new(action.name, int(action.frame_range[0]), action)
    ad.action = None
    strip.frame_end = start + (strip.frame_end - strip.frame_start)
    strip.frame_start = start
    return track, strip


def _dominant(weights):
    from bl_ext.user_default.emote.emote_blender import emotion_curve

    return np.array(emotion_curve.EMOTIONS)[np.argmax(weights, axis=1)]


def test_emotion_keys_in_an_nla_strip_are_honoured(fresh):
    from bl_ext.user_default.emote.emote_blender import emotion_curve

    scene, head = fresh, _head(fresh)
    head.emote.transition_s = 0.0
    _key_emotions(head, [(10, "HAPPY"), (30, "SAD")])
    track, strip = _push_down(head, 110)  # the strip moves the keys to 110 and 130
    assert head.animation_data.action is None
    head.emote.emotion = "NEUTRAL"
    scene.frame_set(7)
    assert emotion_curve.needs_evaluation(head)
    frames = np.arange(100, 150)
    w, intensity = emotion_curve.sample_emotion(scene, frames, 30.0)
    dom = _dominant(w)
    assert set(dom[frames < 130]) == {"happy"} and set(dom[frames >= 130]) == {"sad"}
    np.testing.assert_allclose(intensity, head.emote.intensity)
    assert scene.frame_current == 7  # the animator's frame is back
    # A muted track animates nothing: the property's own value is used, without stepping.
    track.mute = True
    assert not emotion_curve.needs_evaluation(head)
    head.emote.emotion = "ANGRY"
    w, _ = emotion_curve.sample_emotion(scene, frames, 30.0)
    assert set(_dominant(w)) == {"angry"}


def test_a_driver_on_intensity_is_honoured(fresh):
    from bl_ext.user_default.emote.emote_blender import emotion_curve

    scene, head = fresh, _head(fresh)
    _key_emotions(head, [(1, "SURPRISED")])
    drv = head.driver_add("emote.intensity").driver
    drv.type = "SCRIPTED"
    drv.expression = "frame / 200"
    scene.frame_set(3)
    frames = np.arange(20, 260, 10)
    w, intensity = emotion_curve.sample_emotion(scene, frames, 30.0)
    np.testing.assert_allclose(intensity, np.clip(frames / 200, 0, 1), atol=1e-6)
    assert set(_dominant(w)) == {"surprised"}
    assert scene.frame_current == 3


def test_plain_keys_use_the_f_curve_and_leave_the_frame_alone(fresh, monkeypatch):
    from bl_ext.user_default.emote.emote_blender import emotion_curve

    scene, head = fresh, _head(fresh)
    head.emote.transition_s = 0.0
    _key_emotions(head, [(10, "HAPPY"), (30, "SAD")])
    head.emote.intensity = 0.2
    head.keyframe_insert("emote.intensity", frame=10)
    head.emote.intensity = 0.8
    head.keyframe_insert("emote.intensity", frame=30)
    assert not emotion_curve.needs_evaluation(head)
    stepped = []
    monkeypatch.setattr(type(scene), "frame_set", lambda *a, **k: stepped.append(a),
                        raising=False)
    w, intensity = emotion_curve.sample_emotion(scene, np.array([10, 20, 30]), 30.0)
    assert stepped == [] and list(_dominant(w)) == ["happy", "happy", "sad"]
    assert intensity[0] == pytest.approx(0.2) and intensity[2] == pytest.approx(0.8)


def _keyed_action(owner, name, keys):
    """A new action of scene keys [(frame, emotion, intensity)], left unassigned."""
    ad = owner.animation_data_create()
    ad.action = None
    for frame, emo, inten in keys:
        owner.emote.emotion, owner.emote.intensity = emo, inten
        owner.keyframe_insert("emote.emotion", frame=frame)
        owner.keyframe_insert("emote.intensity", frame=frame)
    act = ad.action
    act.name = name
    ad.action = None
    return act


def _stack(owner, config):
    ad = owner.animation_data_create()
    a = _keyed_action(owner, "a", [(1, "HAPPY", 0.2), (11, "SAD", 0.9), (21, "ANGRY", 0.4)])
    b = _keyed_action(owner, "b", [(1, "FEAR", 0.7), (6, "SURPRISED", 0.1)])
    low = ad.nla_tracks.new()
    s1 = low.strips.new("a", 100, a)
    if config == "gap":  # held before, between and after the strips
        s1.extrapolation = "HOLD"
        low.strips.new("b", 140, b).extrapolation = "HOLD_FORWARD"
    elif config == "gap_nothing":  # nothing sets the property before 100 and after 145
        s1.extrapolation = "HOLD_FORWARD"
        low.strips.new("b", 140, b).extrapolation = "NOTHING"
    elif config == "two_tracks":
        s1.extrapolation = "HOLD"
        s2 = ad.nla_tracks.new().strips.new("b", 110, b)
        s2.extrapolation = "NOTHING"
    elif config == "partial_action":
        s1.action_frame_start = 6
        s1.frame_end = s1.frame_start + (s1.action_frame_end - s1.action_frame_start)
    elif config == "active_on_top":
        ad.action = b
        if bpy.app.version >= (4, 4, 0):
            ad.action_slot = b.slots[0]
    elif config == "scaled":
        s1.scale = 2.0
    return ad


@pytest.mark.parametrize("config", ["one", "gap", "gap_nothing", "two_tracks",
                                    "partial_action", "active_on_top", "scaled"])
def test_nla_read_from_curves_equals_stepping_the_scene(fresh, config):
    from bl_ext.user_default.emote.emote_blender import emotion_curve

    scene, head = fresh, _head(fresh)
    _stack(head, config)
    scene.frame_set(50)
    frames = np.arange(90, 160, 0.5)
    read_from_curves = []
    truth = {
        "emote.emotion": emotion_curve.evaluate_per_frame(
            scene, frames, lambda _sc: (emotion_curve.EMOTIONS.index(head.emote.emotion.lower()),)),
        "emote.intensity": emotion_curve.evaluate_per_frame(
            scene, frames, lambda _sc: (head.emote.intensity,)),
    }
    assert scene.frame_current == 50
    for path, want in truth.items():
        got = emotion_curve.nla_samples(head, path, frames)
        if config in ("scaled", "gap_nothing"):
            assert got is None  # time-warped strips, unset frames: left to Blender
            continue
        read_from_curves.append(path)
        if path == "emote.emotion":
            got = emotion_curve.categories_from_samples(got)
        np.testing.assert_allclose(got, want[:, 0], atol=1e-6, err_msg=f"{config} {path}")
    assert len(read_from_curves) == (0 if config in ("scaled", "gap_nothing") else 2)
    # whichever way it is read, the request sees what Blender shows
    w, inten = emotion_curve.sample_emotion(scene, frames, 30.0)
    cats = truth["emote.emotion"][:, 0].astype(int)
    np.testing.assert_allclose(inten, np.clip(truth["emote.intensity"][:, 0], 0, 1), atol=1e-6)
    np.testing.assert_allclose(w, emotion_curve.blend_categories(cats, 30.0,
                                                                 head.emote.transition_s))
