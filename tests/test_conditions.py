"""Condition tracks: intensity levels, linear resampling, emotion mixtures over time, identity."""

from __future__ import annotations

import numpy as np
import pytest

from emote.model_runtime.conditions import (
    EMOTIONS,
    build_condition_track,
    identity_index,
    intensity_one_hot,
    resample_track,
)
from emote.model_runtime.emotions import INTENSITY_LEVELS, N_EMOTIONS
from emote.model_runtime.errors import EmoteInputError

LEVELS = slice(N_EMOTIONS, N_EMOTIONS + INTENSITY_LEVELS)  # intensity columns of a condition row


def test_intensity_one_hot_interpolates_between_levels():
    got = intensity_one_hot([0.0, 0.25, 0.5, 0.75, 1.0, 0.1])
    want = [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1], [0.8, 0.2, 0]]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (6, 3)
    np.testing.assert_allclose(intensity_one_hot(0.5), [[0, 1, 0]])
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_resample_track_is_linear_in_time_and_holds_ends():
    src_fps, dst_fps = 30.0, 25.0
    track = np.stack([np.arange(60) / src_fps, np.ones(60)], 1)  # column 0 = time in seconds
    out = resample_track(track, src_fps, dst_fps, 60)
    times = np.arange(60) / dst_fps
    inside = times <= 59 / src_fps
    np.testing.assert_allclose(out[inside, 0], times[inside], atol=1e-9)
    np.testing.assert_allclose(out[~inside, 0], 59 / src_fps)  # held beyond the end
    np.testing.assert_allclose(out[:, 1], 1.0)
    one_d = resample_track(np.arange(10.0), 10, 20, 5)
    np.testing.assert_allclose(one_d, [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(resample_track([[3.0, 4.0]], 24, 25, 4), [[3, 4]] * 4)


def test_condition_track_layout_mixture_and_identity():
    n_out, n_ids = 8, 4
    rows = build_condition_track(["sad", "happy"], [[0.2, 0.6]] * 10, [1.0] * 10, 30.0, 25.0,
                                 n_out, identity_index=2, n_identities=n_ids)
    assert rows.shape == (n_out, N_EMOTIONS + INTENSITY_LEVELS + n_ids)
    assert rows.dtype == np.float32
    emo = np.zeros(N_EMOTIONS)
    emo[EMOTIONS.index("happy")], emo[EMOTIONS.index("sad")] = 0.75, 0.25  # renormalised
    np.testing.assert_allclose(rows[:, :N_EMOTIONS], np.tile(emo, (n_out, 1)), atol=1e-6)
    np.testing.assert_allclose(rows[:, LEVELS], [[0, 0, 1]] * n_out)  # full intensity: level 3
    np.testing.assert_allclose(rows[:, LEVELS.stop:], [[0, 0, 1, 0]] * n_out)  # identity 2


def test_condition_track_follows_changes_over_time():
    fps, n = 24.0, 48  # two seconds: angry for the first, neutral for the second
    weights = np.zeros((n, 2))
    weights[:24, 0], weights[24:, 1] = 1.0, 1.0
    intensity = np.linspace(0.0, 1.0, n)
    rows = build_condition_track(["angry", "neutral"], weights, intensity, fps, 25.0, 50, 0, 1)
    angry, neutral = EMOTIONS.index("angry"), EMOTIONS.index("neutral")
    t = np.arange(50) / 25.0
    assert np.all(rows[t < 23 / 24 - 1e-9, angry] == 1.0)
    assert np.all(rows[t >= 1.0, neutral] == 1.0)
    np.testing.assert_allclose(rows[:, :N_EMOTIONS].sum(1), 1.0, atol=1e-6)
    level = rows[:, LEVELS] @ np.array([0.0, 0.5, 1.0])  # intensity recovered from the one-hot
    want = np.clip(t * fps / (n - 1), 0, 1)
    np.testing.assert_allclose(level, want, atol=1e-6)


def test_constant_single_row_and_aliases():
    rows = build_condition_track(["Surprise"], [[2.0]], [0.5], 30.0, 25.0, 5, 0, 1)
    assert np.all(rows[:, EMOTIONS.index("surprised")] == 1.0)
    np.testing.assert_allclose(rows[:, LEVELS], [[0, 1, 0]] * 5)


@pytest.mark.parametrize("names,weights,intensity,ident,n_id", [
    (["joyful"], [[1.0]], [0.5], 0, 1),  # unknown emotion
    (["happy"], [[-1.0]], [0.5], 0, 1),  # negative weight
    (["happy", "sad"], [[0.0, 0.0]], [0.5], 0, 1),  # zero row
    (["happy", "sad"], [[1.0]], [0.5], 0, 1),  # wrong column count
    (["happy"], [[1.0]], [1.5], 0, 1),  # intensity out of range
    (["happy"], [[1.0]], ["loud"], 0, 1),  # intensity not numbers
    (["happy"], [[1.0]], [0.5], 3, 2),  # identity out of range
])
def test_bad_conditions_raise_bad_request(names, weights, intensity, ident, n_id):
    with pytest.raises(EmoteInputError) as info:
        build_condition_track(names, weights, intensity, 25.0, 25.0, 4, ident, n_id)
    assert info.value.kind == "bad_request"


def test_unknown_emotion_lists_valid_ones_and_identity_lookup():
    with pytest.raises(EmoteInputError) as info:
        build_condition_track(["joyful"], [[1.0]], [0.5], 25.0, 25.0, 4, 0, 1)
    assert all(name in info.value.message for name in EMOTIONS)
    assert identity_index(None, ["M003", "W009"]) == 0
    assert identity_index("", ["M003", "W009"]) == 0
    assert identity_index("W009", ["M003", "W009"]) == 1
    with pytest.raises(EmoteInputError) as info:
        identity_index("X1", ["M003", "W009"])
    assert info.value.kind == "bad_request" and "W009" in info.value.message


def test_the_emotion_list_is_defined_once():
    """Every part that names the emotions uses model_runtime.emotions' own tuple, not a copy."""
    import importlib

    from emote.model_runtime import emotions

    for name in ("model_runtime.conditions", "model_runtime.checkpoints",
                 "model_runtime.training.teacher", "emote_blender.emotion_curve"):
        assert importlib.import_module("emote." + name).EMOTIONS is emotions.EMOTIONS, name
    for name in ("model_runtime.official_cfg", "model_runtime.training.emotion_classifier"):
        assert importlib.import_module("emote." + name).N_EMOTIONS == len(emotions.EMOTIONS), name
    from emote.model_runtime.training.stage2 import EMOTION_AND_INTENSITY

    assert EMOTION_AND_INTENSITY == len(emotions.EMOTIONS) + emotions.INTENSITY_LEVELS
