"""FLAME <-> ARKit retargeting: a fitted linear map between the synthetic FLAME-format head (100
expressions) and the open head (40 ARKit channels) carries speech both ways, lip gap included."""

from __future__ import annotations

import numpy as np
import pytest

from emote.model_runtime.heads import retarget
from emote.model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS
from emote.model_runtime.heads.flame_pickle import load_flame
from emote.model_runtime.heads.head_model import load_head
from emote.model_runtime.heads.open_head import default_head_path
from emote.model_runtime.training.metrics import lip_signals
from emote.model_runtime.training.teacher import BILABIALS
from tests.helpers.made_up_line import made_up_line
from tests.helpers.synthetic_flame import write_synthetic_flame


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_synthetic_flame(path, n_exp=100)
    return load_flame(path, n_exp=100), load_head(default_head_path())


@pytest.fixture(scope="module")
def speech():
    """The open-head animation of a made-up line with bilabials, rounded and open vowels."""
    return made_up_line(repeats=2)


def _corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def test_arkit_model_drives_a_flame_head(heads, speech):
    flame, ark = heads
    exp, jaw, _ = speech
    m = retarget.fit_retarget(ark, flame)
    assert m.matrix.shape == (len(flame.exp_names), len(ark.exp_names)) and m.bounds is None and m.jaw_open_column is None
    f_exp, f_jaw = m.apply(exp, jaw)
    assert f_exp.shape == (len(exp), 100) and np.array_equal(f_jaw, jaw)
    assert _corr(lip_signals(ark, exp, jaw)[0], lip_signals(flame, f_exp, f_jaw)[0]) >= 0.9
    # the lips' own shapes, jaw aside, follow too (not just the passed-through jaw)
    z = np.zeros_like(jaw)
    assert _corr(lip_signals(ark, exp, z)[0], lip_signals(flame, m.apply(exp, z)[0], z)[0]) >= 0.9


def test_flame_model_drives_an_arkit_head(heads, speech):
    flame, ark = heads
    exp, jaw, phones = speech
    # a FLAME model's output for the line: the speech carried onto the FLAME head's basis
    f_exp, f_jaw = retarget.fit_retarget(ark, flame).apply(exp, jaw)
    m = retarget.fit_retarget(flame, ark)
    assert m.matrix.shape == (40, 100) and m.bounds == (0.0, 1.0)
    a_exp, a_jaw = m.apply(f_exp, f_jaw)
    assert a_exp.min() >= 0 and a_exp.max() <= 1
    jaw_open = list(OPEN_HEAD_CHANNELS).index("jawOpen")
    np.testing.assert_allclose(a_exp[:, jaw_open],
                               np.clip(f_jaw[:, 0] / JAW_OPEN_FULL_RAD, 0, 1), atol=1e-6)
    g_flame = lip_signals(flame, f_exp, f_jaw)[0]
    g_ark = lip_signals(ark, a_exp, a_jaw)[0]
    assert _corr(g_flame, g_ark) >= 0.9
    z = np.zeros_like(f_jaw)
    f0 = retarget.fit_retarget(ark, flame).apply(exp, z)[0]
    assert _corr(lip_signals(flame, f0, z)[0], lip_signals(ark, *m.apply(f0, z))[0]) >= 0.9
    # the lips close on the bilabials: those frames are among the most closed on the ARKit head
    fps = 25.0
    mids = [int((s + e) / 2 * fps) for p, s, e in phones if p in BILABIALS]
    assert np.median(g_ark[mids]) <= np.quantile(g_ark, 0.3)


def test_jaw_from_jaw_open_and_input_checks(heads, speech):
    flame, ark = heads
    exp, jaw, _ = speech
    m = retarget.fit_retarget(ark, flame)
    _, j = m.apply(exp)  # an ARKit stream without a jaw: jawOpen sets it
    np.testing.assert_allclose(j[:, 0], exp[:, 0] * JAW_OPEN_FULL_RAD, rtol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        m.apply(exp[:, :10], jaw)
    with pytest.raises(ValueError, match="jaw has shape"):
        m.apply(exp, jaw[:-1])
    with pytest.raises(ValueError, match="jawOpen"):
        retarget.fit_retarget(flame, ark).apply(np.zeros((3, 100)))


def test_map_is_fitted_once_per_head_pair(heads, monkeypatch):
    flame, ark = heads
    calls = []
    real = retarget.fit_retarget
    monkeypatch.setattr(retarget, "fit_retarget", lambda s, t: calls.append(1) or real(s, t))
    monkeypatch.setattr(retarget, "_CACHE", {})
    a = retarget.retarget_map(flame, ark)
    assert retarget.retarget_map(flame, ark) is a and len(calls) == 1
    retarget.retarget_map(ark, flame)
    assert len(calls) == 2


def test_is_arkit_head():
    assert retarget.is_arkit_head(list(OPEN_HEAD_CHANNELS))
    assert retarget.is_arkit_head(["jawOpen", "eyeBlinkLeft"])
    assert not retarget.is_arkit_head(["exp000", "jawOpen"]) and not retarget.is_arkit_head([])


def test_apply_to_result_relabels_channels(heads, speech):
    flame, ark = heads
    exp, jaw, _ = speech
    m = retarget.fit_retarget(ark, flame)
    res = {"fps": np.float64(25), "exp": exp, "jaw": jaw, "exp_names": np.array(ark.exp_names),
           "model_id": np.array("m"), "head_id": np.array(ark.head_id)}
    out = retarget.apply_to_result(m, res)
    assert list(out["exp_names"]) == flame.exp_names and str(out["head_id"]) == flame.head_id
    np.testing.assert_allclose(out["exp"], m.apply(exp, jaw)[0])
    assert str(out["retargeted_from"]) == ark.head_id and out["model_id"] == res["model_id"]
    with pytest.raises(ValueError, match="not those"):
        retarget.apply_to_result(m, dict(res, exp_names=np.array(flame.exp_names[:-1])))


def test_mouth_landmarks_read_off_arkit_shapes(heads):
    _flame, ark = heads
    truth = {n: ark.landmark(n) for n in retarget.LIP_LANDMARKS}
    assert retarget.landmarks_from_arkit_shapes(ark.v_template, ark.exp_dirs,
                                                ark.exp_names) == truth
    apple = [n.replace("_L", "Left").replace("_R", "Right") for n in ark.exp_names]
    keep = [i for i, n in enumerate(ark.exp_names) if n != "mouthClose"]  # the fallback shapes
    assert retarget.landmarks_from_arkit_shapes(ark.v_template, ark.exp_dirs[:, :, keep],
                                                [apple[i] for i in keep]) == truth
    no_smile = [i for i, n in enumerate(ark.exp_names) if not n.startswith("mouthSmile")]
    assert retarget.landmarks_from_arkit_shapes(ark.v_template, ark.exp_dirs[:, :, no_smile],
                                                [ark.exp_names[i] for i in no_smile]) is None
