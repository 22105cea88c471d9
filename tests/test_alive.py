"""Blinks, gaze and head motion (model_runtime.alive) and the strength controls
(model_runtime.strengths): rates on real speech, determinism, switches, ranges, contract."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emote.model_runtime import alive, cli, strengths
from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.inference import validate_request

ROOT = Path(__file__).resolve().parents[1]
LINE = ROOT / "assets" / "dialogue" / "line_01.wav"


@pytest.fixture(scope="module")
def speech60(tmp_path_factory) -> Path:
    """60 s of real speech: the sample dialogue line (6.1 s) repeated."""
    x, sr = sf.read(LINE, dtype="float32")
    assert sr == 16000
    path = tmp_path_factory.mktemp("speech") / "line60.wav"
    sf.write(path, np.tile(x, 10)[:60 * sr], sr, subtype="PCM_16")
    return path


def _audio(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "model_runtime", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_generate_on_60_s_of_speech_blinks_looks_and_moves_and_switches_turn_it_off(
        speech60, tmp_path):
    on, off = tmp_path / "on.npz", tmp_path / "off.npz"
    res = _cli("generate", str(speech60), "-o", str(on), "--progress", "none")
    assert res.returncode == 0, res.stderr
    res = _cli("generate", str(speech60), "-o", str(off), "--progress", "none", "--no-blinks",
               "--no-gaze", "--no-head-motion")
    assert res.returncode == 0, res.stderr
    with np.load(on) as d, np.load(off) as z:
        names = list(d["exp_names"])
        fps, n = float(d["fps"]), d["exp"].shape[0]
        minutes = n / fps / 60
        assert abs(minutes - 1.0) < 0.01
        blink = d["exp"][:, names.index("eyeBlink_L")]
        assert 10 <= alive.count_blinks(blink) / minutes <= 20
        assert alive.count_blinks(d["exp"][:, names.index("eyeBlink_R")]) == \
            alive.count_blinks(blink)  # both lids together
        assert alive.count_gaze_shifts(d["gaze"], fps) >= n / fps / 3  # one per 3 s at least
        head_deg = np.degrees(np.linalg.norm(d["head"], axis=1))
        assert head_deg.max() > 1.0 and head_deg.max() <= 6.0
        assert d["head"].shape == (n, 3) and d["gaze"].shape == (n, 2)
        # Off: no blink reaches half closed, gaze and head are all zero, the rest unchanged.
        assert list(z["exp_names"]) == names
        assert alive.count_blinks(z["exp"][:, names.index("eyeBlink_L")]) == 0
        assert not np.any(z["gaze"]) and not np.any(z["head"])
        other = [i for i, nm in enumerate(names) if not nm.startswith("eyeBlink")]
        np.testing.assert_array_equal(d["exp"][:, other], z["exp"][:, other])
        np.testing.assert_array_equal(d["jaw"], z["jaw"])


def test_rates_hold_for_every_seed_and_frame_rate(speech60):
    x = _audio(speech60)
    for fps in (24.0, 25.0, 30.0, 60.0):
        n = int(60 * fps)
        for seed in range(6):
            tr = alive.make_tracks(x, fps, n, {"seed": seed})
            assert 10 <= alive.count_blinks(tr["blink"]) <= 20, (fps, seed)
            assert alive.count_gaze_shifts(tr["gaze"], fps) >= 20, (fps, seed)
            deg = np.degrees(np.linalg.norm(tr["head"], axis=1))
            assert 1.0 < deg.max() <= 6.0
            assert np.degrees(np.abs(tr["gaze"])).max() <= 16.0


def test_more_blinks_follow_pauses_than_chance(speech60):
    """Blinks cluster just after pause onsets: the share of blinks within 0.5 s after one is
    well above the share of time those windows cover."""
    x, fps = _audio(speech60), 25.0
    n = int(60 * fps)
    feats = alive.speech_features(x, fps, n)
    near = np.zeros(n, dtype=bool)
    for k in feats["pause_onsets"]:
        near[k:k + int(0.5 * fps)] = True
    hits = total = 0
    for seed in range(10):
        b = alive.make_tracks(x, fps, n, {"seed": seed, "gaze": 0, "head_motion": 0})["blink"]
        peaks = np.nonzero((b[1:] >= 0.5) & (b[:-1] < 0.5))[0] + 1
        hits += int(near[peaks].sum())
        total += len(peaks)
    assert hits / total > 2 * near.mean()


def test_same_seed_same_take_other_seed_other_take_and_tracks_independent(speech60):
    x = _audio(speech60)[:16000 * 20]
    a = alive.make_tracks(x, 30.0, 600, {"seed": 7})
    b = alive.make_tracks(x, 30.0, 600, {"seed": 7})
    c = alive.make_tracks(x, 30.0, 600, {"seed": 8})
    for k in ("blink", "gaze", "head"):
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
    no_gaze = alive.make_tracks(x, 30.0, 600, {"seed": 7, "gaze": 0})
    np.testing.assert_array_equal(no_gaze["blink"], a["blink"])
    np.testing.assert_array_equal(no_gaze["head"], a["head"])
    assert not np.any(no_gaze["gaze"])


def test_strength_zero_is_off_and_strength_scales(speech60):
    x = _audio(speech60)[:16000 * 10]
    off = alive.make_tracks(x, 25.0, 250, {"blinks": 0, "gaze": 0, "head_motion": 0})
    assert all(not np.any(v) for v in off.values())
    one = alive.make_tracks(x, 25.0, 250, {"seed": 1})
    half = alive.make_tracks(x, 25.0, 250, {"seed": 1, "blinks": 0.5, "gaze": 0.5})
    np.testing.assert_allclose(half["blink"], 0.5 * one["blink"], atol=1e-6)
    np.testing.assert_allclose(half["gaze"], 0.5 * one["gaze"], atol=1e-6)
    assert one["blink"].dtype == np.float32 and one["head"].shape == (250, 3)


def test_blink_lid_timing_closes_fast_and_opens_slowly():
    dt = np.linspace(-0.3, 0.5, 801)
    shape = alive.blink_shape(dt)
    assert shape.max() == 1.0 and shape[0] == 0.0 and shape[-1] == 0.0
    closed = dt[shape >= 0.5]
    t_close = closed[0] - dt[np.nonzero(shape > 0.01)[0][0]]
    t_open = dt[np.nonzero(shape > 0.01)[0][-1]] - closed[-1]
    assert 0.02 < t_close < t_open < 0.25


def test_blinks_join_arkit_channels_by_max_and_flame_results_by_new_channels():
    blink = np.array([0.0, 0.6, 1.0, 0.0], dtype=np.float32)
    exp = np.array([[-0.1, 0.2], [0.3, 0.9], [0.0, 0.5], [0.05, -0.2]], dtype=np.float32)
    out, names = alive.combine_blinks(np.c_[exp, exp[:, :1]], ["eyeBlink_L", "jawOpen",
                                                                  "eyeBlink_R"], blink)
    assert names == ["eyeBlink_L", "jawOpen", "eyeBlink_R"]
    np.testing.assert_allclose(out[:, 0], [-0.1, 0.6, 1.0, 0.05])  # untouched without a blink
    np.testing.assert_array_equal(out[:, 1], exp[:, 1])
    out, names = alive.combine_blinks(exp, ["exp0", "exp1"], blink)
    assert names == ["exp0", "exp1", "eyeBlink_L", "eyeBlink_R"]
    np.testing.assert_array_equal(out[:, 2], blink)


def _req(**extra) -> dict:
    return {"audio": "a.wav", "fps": 25, **extra}


def test_request_alive_and_strengths_fields_are_checked():
    assert validate_request(_req())["alive"] == {"blinks": 0.0, "gaze": 0.0, "head_motion": 0.0,
                                                 "seed": 0}  # old requests: all off
    assert validate_request(_req(alive={"seed": 3}))["alive"] == {
        "blinks": 1.0, "gaze": 1.0, "head_motion": 1.0, "seed": 3}
    for bad, field in (({"blinks": 3}, "alive.blinks"), ({"wink": 1}, "alive.wink"),
                       ({"seed": -1}, "alive.seed"), ({"gaze": "yes"}, "alive.gaze")):
        with pytest.raises(EmoteInputError) as exc:
            validate_request(_req(alive=bad))
        assert exc.value.kind == "bad_request" and field in exc.value.message
    with pytest.raises(EmoteInputError, match="upper_face"):
        validate_request(_req(strengths={"upper_face": "lots"}))
    with pytest.raises(EmoteInputError, match="unknown strength"):
        validate_request(_req(strengths={"eyes": 1}))
    assert validate_request(_req(strengths={"lower_face": 0.5}))["strengths"]["lower_face"] == 0.5


def _parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["generate", "a.wav", "-o", "r.npz", *argv])


def test_cli_switches_strengths_and_seed_reach_the_request():
    req = cli._request_from_args(_parse())
    assert req["alive"] == {"blinks": 1.0, "gaze": 1.0, "head_motion": 1.0, "seed": 0}
    req = cli._request_from_args(_parse("--no-blinks", "--no-gaze", "--no-head-motion",
                                        "--seed", "5", "--upper-face", "0.5",
                                        "--smoothing", "0.04"))
    assert req["alive"] == {"blinks": 0.0, "gaze": 0.0, "head_motion": 0.0, "seed": 5}
    assert req["strengths"]["upper_face"] == 0.5 and req["strengths"]["smoothing"] == 0.04
    json.dumps(req)
    with pytest.raises(SystemExit):
        _parse("--lower-face", "3")


NAMES = ["browInnerUp", "eyeSquint_L", "eyeBlink_L", "jawOpen", "mouthSmile_L", "mouthClose",
         "mouthPress_R", "noseSneer_L", "exp7"]


def _result(n: int = 40) -> dict:
    rng = np.random.default_rng(0)
    return {"fps": 25.0, "exp_names": NAMES, "exp": rng.uniform(0, 1, (n, len(NAMES))),
            "jaw": rng.uniform(0, 0.2, (n, 3)), "head": rng.normal(size=(n, 3)),
            "gaze": rng.normal(size=(n, 2))}


def test_strengths_scale_only_their_region():
    r = _result()
    out = strengths.apply(r, {"upper_face": 0.5, "lower_face": 1.5, "lip_closure": 0.2})
    gain = out["exp"] / r["exp"]
    expect = {"browInnerUp": 0.5, "eyeSquint_L": 0.5, "eyeBlink_L": 1.0, "jawOpen": 1.5,
              "mouthSmile_L": 1.5, "mouthClose": 0.3, "mouthPress_R": 0.3, "noseSneer_L": 0.5,
              "exp7": 1.0}  # a name without a region: the mean of upper and lower
    for i, name in enumerate(NAMES):
        np.testing.assert_allclose(gain[:, i], expect[name], rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(out["jaw"], 1.5 * r["jaw"], rtol=1e-5)
    assert out["head"] is r["head"] and out["gaze"] is r["gaze"]
    shares = strengths.apply(r, {"upper_face": 0.0, "lower_face": 1.0}, {"exp7": 0.75})
    np.testing.assert_allclose(shares["exp"][:, 8], 0.25 * r["exp"][:, 8], rtol=1e-5)


def test_neutral_strengths_change_nothing_and_smoothing_is_gaussian_in_seconds():
    from scipy.ndimage import gaussian_filter1d

    r = _result()
    assert strengths.is_neutral({}) and strengths.is_neutral(None)
    out = strengths.apply(r, None)
    np.testing.assert_allclose(out["exp"], r["exp"], rtol=1e-6)
    np.testing.assert_allclose(out["jaw"], r["jaw"], rtol=1e-6)
    out = strengths.apply(r, {"smoothing": 0.08})  # 2 frames at 25 fps
    want = gaussian_filter1d(r["exp"], 2.0, axis=0, mode="nearest")
    blink = NAMES.index("eyeBlink_L")
    keep = [i for i in range(len(NAMES)) if i != blink]
    np.testing.assert_allclose(out["exp"][:, keep], want[:, keep], atol=1e-6)
    np.testing.assert_allclose(out["exp"][:, blink], r["exp"][:, blink], atol=1e-6)
    np.testing.assert_allclose(out["jaw"], gaussian_filter1d(r["jaw"], 2.0, axis=0,
                                                             mode="nearest"), atol=1e-6)


def test_read_result_accepts_results_with_and_without_head_and_gaze(tmp_path):
    from emote.emote_blender.runtime_result import read_result
    from emote.model_runtime.errors import RuntimeFailure

    base = {"fps": np.float64(25), "exp": np.zeros((5, 2), np.float32),
            "jaw": np.zeros((5, 3), np.float32), "exp_names": np.array(["a", "b"])}
    np.savez(tmp_path / "old.npz", **base)
    r = read_result(tmp_path / "old.npz", 5)
    assert r["head"].shape == (5, 3) and not r["head"].any() and r["gaze"].shape == (5, 2)
    head = np.full((5, 3), 0.01, np.float32)
    np.savez(tmp_path / "new.npz", **base, head=head, gaze=np.zeros((5, 2), np.float32))
    np.testing.assert_array_equal(read_result(tmp_path / "new.npz", 5)["head"], head)
    np.savez(tmp_path / "bad.npz", **base, head=np.zeros((4, 3)), gaze=np.zeros((5, 2)))
    with pytest.raises(RuntimeFailure, match="head"):
        read_result(tmp_path / "bad.npz", 5)


def test_runtime_applies_request_strengths_to_its_result(tmp_path):
    """The command line's strength options reach the result: lower face halves mouth and jaw,
    brows stay (the blinks, gaze and head are off in both)."""
    from emote.model_runtime.inference import run_request

    base = {"audio": str(LINE), "fps": 25, "audio_end_s": 3.0}
    run_request(base, tmp_path / "plain.npz")
    run_request({**base, "strengths": {"lower_face": 0.5, "upper_face": 1.0}},
                tmp_path / "tuned.npz")
    with np.load(tmp_path / "plain.npz") as a, np.load(tmp_path / "tuned.npz") as b:
        names = list(a["exp_names"])
        for name in ("mouthClose", "mouthFunnel", "mouthSmile_L"):
            i = names.index(name)
            np.testing.assert_allclose(b["exp"][:, i], 0.5 * a["exp"][:, i], atol=1e-6)
        i = names.index("browInnerUp")
        np.testing.assert_allclose(b["exp"][:, i], a["exp"][:, i], atol=1e-6)
        np.testing.assert_allclose(b["jaw"], 0.5 * a["jaw"], atol=1e-6)
        assert not np.any(a["head"]) and not np.any(a["gaze"])
