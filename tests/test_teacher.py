"""Teacher animation: shapes, closures, rounding, emotions, styles, and the lip-sync ceiling."""

import numpy as np
import pytest

from emote.model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS
from emote.model_runtime.training import metrics, teacher

CH = {n: i for i, n in enumerate(OPEN_HEAD_CHANNELS)}
CONSONANTS = ["T", "D", "N", "L", "S", "Z", "K", "G", "R", "HH", "F", "V", "TH", "DH", "SH",
              "CH", "JH", "Y", "W", "NG"]
VOWELS = sorted(teacher.VOWELS)


def random_utterance(rng, seconds=6.0):
    """Phones (CV syllables with bilabials, pauses) and a matching loudness-shaped noise signal."""
    phones, t = [["SIL", 0.0, 0.3]], 0.3
    while t < seconds - 0.5:
        if rng.uniform() < 0.08:
            d = rng.uniform(0.15, 0.4)
            phones.append(["SIL", t, t + d])
            t += d
        c = str(rng.choice(["P", "B", "M"])) if rng.uniform() < 0.35 else str(rng.choice(CONSONANTS))
        d = rng.uniform(0.03, 0.14)
        phones.append([c, t, t + d])
        t += d
        d = rng.uniform(0.04, 0.22)
        phones.append([str(rng.choice(VOWELS)), t, t + d])
        t += d
    phones.append(["SIL", t, seconds])
    n = int(seconds * 16000)
    env = np.full(n, 0.003)
    for p, s, e in phones:
        if p != "SIL":
            env[int(s * 16000):int(e * 16000)] = 0.3 if p in teacher.VOWELS else 0.08
    audio = (rng.standard_normal(n) * env).astype(np.float32)
    return phones, audio


def neutral(T):
    return teacher.one_emotion_curve(T, "neutral", 0.0)


def test_shapes_and_jaw_consistency():
    rng = np.random.default_rng(0)
    phones, audio = random_utterance(rng, 3.0)
    T = len(audio) // 640
    W, I = teacher.random_emotion_curve(T, rng)
    exp, jaw = teacher.teacher_animation(phones, audio, W, I, "neutral", rng)
    assert exp.shape == (T, len(OPEN_HEAD_CHANNELS)) and jaw.shape == (T, 3)
    assert exp.dtype == np.float32 and jaw.dtype == np.float32
    assert np.all(jaw[:, 1:] == 0) and jaw[:, 0].min() >= 0 and jaw[:, 0].max() > 0.05
    np.testing.assert_allclose(exp[:, CH["jawOpen"]], jaw[:, 0] / JAW_OPEN_FULL_RAD, atol=1e-6)
    assert exp.min() >= 0 and exp.max() <= 1


def test_bilabials_close_and_vowels_open():
    phones = [["SIL", 0, 0.3], ["AA", 0.3, 0.5], ["M", 0.5, 0.6], ["AA", 0.6, 0.8], ["SIL", 0.8, 1.2]]
    audio = np.random.default_rng(1).standard_normal(19200).astype(np.float32) * 0.1
    exp, jaw = teacher.teacher_animation(phones, audio, *neutral(30), "expressive")
    for k in teacher.closure_frames(0.5, 0.6):
        assert exp[k, CH["mouthClose"]] == pytest.approx(1.0)
        assert jaw[k, 0] < 0.01
    assert jaw[teacher.frame_of_time(0.4), 0] > 0.1 and jaw[teacher.frame_of_time(0.7), 0] > 0.1


def test_anticipatory_rounding_crosses_consonants():
    phones = [["SIL", 0, 0.2], ["IY", 0.2, 0.4], ["S", 0.4, 0.5], ["T", 0.5, 0.56],
              ["UW", 0.56, 0.8], ["SIL", 0.8, 1.2]]
    audio = np.full(19200, 0.1, np.float32)
    exp, _ = teacher.teacher_animation(phones, audio, *neutral(30), "neutral")
    pucker = exp[:, CH["mouthPucker"]]
    assert pucker[teacher.frame_of_time(0.52)] > 0.25  # rounding already in the /t/ before /u/
    assert pucker[teacher.frame_of_time(0.3)] < 0.1  # not during the spread /i/


def test_emotion_patterns_and_modulation():
    rng = np.random.default_rng(2)
    phones, audio = random_utterance(rng, 3.0)
    T = len(audio) // 640
    out = {e: teacher.teacher_animation(phones, audio, *teacher.one_emotion_curve(T, e, 1.0),
                                        "neutral", np.random.default_rng(0))
           for e in teacher.EMOTIONS}
    ne, nj = out["neutral"]
    assert np.all(ne[:, CH["eyeBlink_L"]] == 0)  # no blinks in targets
    assert out["happy"][0][:, CH["mouthSmile_L"]].mean() > ne[:, CH["mouthSmile_L"]].mean() + 0.4
    assert out["angry"][0][:, CH["browDown_L"]].mean() > 0.6
    assert out["surprised"][1][:, 0].mean() > nj[:, 0].mean()  # surprise drops the jaw
    assert out["sad"][1][:, 0].mean() < nj[:, 0].mean()  # sadness lowers energy
    c = out["contempt"][0]
    assert c[:, CH["mouthSmile_L"]].mean() > c[:, CH["mouthSmile_R"]].mean() + 0.3  # one-sided
    # every emotion gives a distinct whole-face pattern
    means = np.stack([out[e][0].mean(0) for e in teacher.EMOTIONS])
    d = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert d[~np.eye(8, dtype=bool)].min() > 0.2


def test_random_emotion_curve_is_a_smooth_mixture():
    seen_change = False
    for seed in range(40):
        W, I = teacher.random_emotion_curve(200, np.random.default_rng(seed))
        assert W.shape == (200, 8) and I.shape == (200,)
        np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-5)
        assert W.min() >= 0 and 0 <= I.min() and I.max() <= 1
        assert np.abs(np.diff(W, axis=0)).max() < 0.2  # smooth transitions
        seen_change |= bool(np.argmax(W[0]) != np.argmax(W[-1]))
    assert seen_change


def test_styles_differ_in_amplitude():
    rng = np.random.default_rng(3)
    phones, audio = random_utterance(rng, 4.0)
    T = len(audio) // 640
    jaws = {s: teacher.teacher_animation(phones, audio, *neutral(T), s,
                                         np.random.default_rng(0))[1][:, 0].mean()
            for s in teacher.STYLES}
    assert set(teacher.STYLES) >= {"neutral", "crisp", "relaxed", "expressive"}
    assert jaws["expressive"] > jaws["neutral"] > jaws["relaxed"]


def test_reference_lip_gap_follows_alignment():
    phones = [["SIL", 0, 0.2], ["AA", 0.2, 0.5], ["B", 0.5, 0.6], ["AA", 0.6, 0.9], ["SIL", 0.9, 1.2]]
    g = teacher.reference_lip_gap(phones, 30)
    assert g.shape == (30,)
    assert g[teacher.closure_frames(0.5, 0.6)].max() == 0
    assert g[teacher.frame_of_time(0.35)] > 0.3 and g[0] < 0.02 and g[29] < 0.02


def _open_head():
    try:
        from emote.model_runtime.heads.head_model import load_head
        from emote.model_runtime.heads.open_head import default_head_path
    except ImportError:
        pytest.skip("model_runtime.heads.open_head is not written yet")
    return load_head(default_head_path())


@pytest.mark.parametrize("emotion,style", [("neutral", "neutral"), ("neutral", "relaxed"),
                                           ("angry", "crisp"), ("surprised", "expressive"),
                                           ("sad", "relaxed"), ("contempt", "neutral")])
def test_teacher_is_the_ceiling_on_the_open_head(emotion, style):
    """METRICS.md on the open head's vertices with the corpus's own timings: closure recall
    >= 98 %, false closures <= 2 %."""
    head = metrics.landmark_head(_open_head())
    rng = np.random.default_rng(11)
    per = []
    for _ in range(6):
        phones, audio = random_utterance(rng, 8.0)
        T = len(audio) // 640
        exp, jaw = teacher.teacher_animation(phones, audio, *teacher.one_emotion_curve(T, emotion, 1.0),
                                             style, rng)
        idx = [OPEN_HEAD_CHANNELS.index(n) for n in head.exp_names]
        g, w = metrics.lip_signals(head, exp[:, idx], jaw)
        per.append(metrics.clip_metrics(g, w, phones))
    m = metrics.pool(per)
    assert m["n_bilabials"] > 60 and m["n_open_vowels"] > 150
    assert m["closure_recall"] >= 0.98, m
    assert m["false_closure_rate"] <= 0.02, m
    assert m["seal_gap_mm"] <= 0.5, m  # the lips touch
    if (emotion, style) == ("neutral", "neutral"):
        # open vowels open wide (issue 16: the first table's 10.6 mm left students half open)
        assert m["open_gap_mm"] >= 12.0, m
