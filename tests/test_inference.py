"""Windowed inference, output resampling and the whole runtime request (RESULT.npz)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from emote.model_runtime import inference
from emote.model_runtime.checkpoints import build_model, save_checkpoint, tiny_config
from emote.model_runtime.conditions import build_condition_track
from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.inference import (
    crossfade_weights,
    generate_result,
    predict,
    resample_rotations,
    run_request,
    window_starts,
)

EXP_NAMES = [f"exp{i}" for i in range(6)]
FPS_LIST = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0)

torch.set_num_threads(1)


class FrameMeanModel(torch.nn.Module):
    """A deterministic stand-in network: every output channel of frame k is the mean of the audio
    samples of frame k (jaw: 0.1 x that about +x). With a ramp as audio it reads out time."""

    def __init__(self, n_exp: int):
        super().__init__()
        self.n_exp = n_exp
        self.calls: list[int] = []

    def forward(self, audio: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        b, t = condition.shape[:2]
        self.calls.append(t)
        m = audio[:, : t * 640].reshape(b, t, 640).mean(-1, keepdim=True)
        zeros = torch.zeros_like(m)
        return torch.cat([m.expand(b, t, self.n_exp), 0.1 * m, zeros, zeros], -1)


def _condition(n_frames: int, n_id: int = 1) -> np.ndarray:
    return build_condition_track(["happy"], [[1.0]], [0.5], 25.0, 25.0, n_frames, 0, n_id)


def _request(audio, **over) -> dict:
    req = {"audio": str(audio), "audio_start_s": 0.0, "audio_end_s": None, "fps": 25.0,
           "frame_count": None, "model": "default", "identity": None,
           "emotion": {"names": ["neutral"], "weights": [[1.0]]}, "intensity": [0.5]}
    req.update(over)
    return req


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    config = tiny_config(EXP_NAMES, identities=("calm", "lively"))
    folder = tmp_path_factory.mktemp("ckpt") / "tiny_model"
    save_checkpoint(build_model(config), config, folder)
    return folder


@pytest.fixture(scope="module")
def ramp_wav(tmp_path_factory):
    """4 s at 44.1 kHz whose sample value is its time in seconds."""
    rate = 44100
    path = tmp_path_factory.mktemp("audio") / "ramp.wav"
    sf.write(path, (np.arange(4 * rate) / rate).astype(np.float32), rate, subtype="FLOAT")
    return path


def test_windows_cover_everything_on_the_latent_grid():
    for n in (1, 100, 504, 505, 1000, 1337, 15000):
        starts = window_starts(n)
        assert starts[0] == 0 and all(s % 8 == 0 for s in starts)
        ends = [s + 504 for s in starts[:-1]] + [n]
        assert all(e - s <= 504 + 7 for s, e in zip(starts, ends))
        assert all(ends[i] - starts[i + 1] >= 64 for i in range(len(starts) - 1))  # overlap
    w = crossfade_weights(100, 16, first=False, last=False)
    assert w.min() > 0 and w[16:84].min() == 1.0 and np.all(np.diff(w[:16]) > 0)


def test_windowed_prediction_matches_a_single_pass_for_a_local_model():
    rng = np.random.default_rng(1)
    n = 1000
    audio = rng.standard_normal(n * 640 + 300).astype(np.float32)
    model = FrameMeanModel(4)
    config = tiny_config(["a", "b", "c", "d"])
    y = predict(model, config, audio, _condition(n), window_frames=128, overlap_frames=32)
    want = audio[: n * 640].reshape(n, 640).mean(1)
    np.testing.assert_allclose(y[:, 0], want, atol=1e-5)  # windows line up with the audio
    assert max(model.calls) <= 128 + 7 and len(model.calls) > 5


def test_wav2vec2_and_normalising_models_get_the_whole_clip_normalised():
    rng = np.random.default_rng(2)
    n = 300
    audio = (3.0 + 0.5 * rng.standard_normal(n * 640)).astype(np.float32)
    config = tiny_config(["a"])
    config["architecture"]["audio_encoder"] = "wav2vec2"
    y = predict(FrameMeanModel(1), config, audio, _condition(n), window_frames=64,
                overlap_frames=16)
    norm = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    np.testing.assert_allclose(y[:, 0], norm.reshape(n, 640).mean(1), atol=1e-4)
    config["architecture"]["audio_encoder"] = "logmel"  # log-mel models get the raw waveform
    y = predict(FrameMeanModel(1), config, audio, _condition(n))
    np.testing.assert_allclose(y[:, 0], audio.reshape(n, 640).mean(1), atol=1e-5)
    config["audio_normalisation"] = "whole_clip_zero_mean_unit_variance"  # ...unless trained so
    y = predict(FrameMeanModel(1), config, audio, _condition(n))
    np.testing.assert_allclose(y[:, 0], norm.reshape(n, 640).mean(1), atol=1e-4)


def test_seams_are_invisible_with_a_random_network():
    torch.manual_seed(3)
    config = tiny_config(EXP_NAMES)
    model = build_model(config)
    rng = np.random.default_rng(3)
    n, win, ov = 720, 96, 32
    t = np.arange(n * 640) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 3 * t) * rng.standard_normal(t.size)).astype(np.float32)
    y = predict(model, config, audio, _condition(n), window_frames=win, overlap_frames=ov)
    step = np.linalg.norm(np.diff(y, axis=0), axis=1)  # step[k]: frame k -> k + 1
    starts = window_starts(n, win, ov)
    seams = set()
    for s in starts[1:]:
        seams.update(range(s - 1, s + 1))  # where the next window begins
    for s in starts[:-1]:
        seams.update(range(s + win - 2, s + win))  # where a window ends
    seams = sorted(k for k in seams if 0 <= k < n - 1)
    elsewhere = np.delete(step, seams)
    assert step[seams].max() <= np.percentile(elsewhere, 99)
    # The blend is needed: the windows really disagree in their overlaps.
    single = predict(model, config, audio[: win * 640], _condition(win))
    assert np.abs(single[-ov:] - y[win - ov:win]).max() > 1e-3


def _hwm_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _peak_growth_mib(model, config, seconds: float) -> float:
    n = int(seconds * 25)
    audio = (0.1 * np.random.default_rng(4).standard_normal(n * 640)).astype(np.float32)
    cond = _condition(n)
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak-RSS mark
        fh.write("5")
    base = _hwm_kib()
    y = predict(model, config, audio, cond)
    assert y.shape == (n, len(EXP_NAMES) + 3) and np.isfinite(y).all()
    return (_hwm_kib() - base) / 1024


def test_ten_minutes_complete_in_bounded_memory():
    try:
        open("/proc/self/clear_refs", "w").close()
    except OSError:
        pytest.skip("peak RSS cannot be reset on this system (/proc/self/clear_refs)")
    torch.manual_seed(5)
    config = tiny_config(EXP_NAMES)
    model = build_model(config)
    calls = []
    model.register_forward_hook(lambda mod, args, out: calls.append(args[1].shape[1]))
    _peak_growth_mib(model, config, 30)  # warm-up: allocator pools, thread buffers
    two = _peak_growth_mib(model, config, 120)
    ten = _peak_growth_mib(model, config, 600)
    outputs = 600 * 25 * (len(EXP_NAMES) + 3) * 8 * 3 / 2 ** 20  # float64 sums + copies
    assert ten <= 2 * two + outputs + 8, (two, ten)
    assert max(calls) <= inference.WINDOW_FRAMES + 7


def test_resampling_reads_out_time_from_audio_start_for_every_fps(ramp_wav):
    model, config = FrameMeanModel(len(EXP_NAMES)), tiny_config(EXP_NAMES)
    start, end = 0.7, 2.95
    for fps in FPS_LIST:
        res = generate_result(_request(ramp_wav, audio_start_s=start, audio_end_s=end, fps=fps),
                              model, config, "mean")
        n_audio = round((end - start) * 16000)
        n_out = math.floor(n_audio / 16000 * fps + 0.5)
        assert res["exp"].shape == (n_out, len(EXP_NAMES)) and res["jaw"].shape == (n_out, 3)
        t = np.arange(n_out) / fps
        n_model = n_audio // 640
        inside = t <= (n_model - 1) / 25
        # model frame k holds the mean of audio k/25 .. (k+1)/25, i.e. time k/25 + 20 ms
        want = start + np.minimum(t, (n_model - 1) / 25) + 0.02
        np.testing.assert_allclose(res["exp"][inside, 0], want[inside], atol=2e-4)
        np.testing.assert_allclose(res["exp"][~inside, 0], want[~inside], atol=2e-4)  # held
        np.testing.assert_allclose(res["jaw"][:, 0], 0.1 * want, atol=1e-4)
        np.testing.assert_allclose(res["jaw"][:, 1:], 0.0, atol=1e-6)
        assert float(res["fps"]) == fps


@pytest.mark.parametrize("fps", FPS_LIST)
def test_run_request_writes_result_for_every_fps(tmp_path, tiny_ckpt, ramp_wav, fps):
    out = tmp_path / "sub" / "RESULT.npz"
    n_rows = math.floor(2.5 * fps + 0.5)
    req = _request(ramp_wav, audio_start_s=1.0, audio_end_s=3.5, fps=fps, frame_count=n_rows,
                   model=str(tiny_ckpt), identity="lively",
                   emotion={"names": ["happy", "angry"],
                            "weights": np.linspace([1, 0], [0, 1], n_rows).tolist()},
                   intensity=np.linspace(0, 1, n_rows).tolist())
    seen = []
    summary = run_request(req, out, lambda *a: seen.append(a))
    with np.load(out) as d:
        assert set(d.files) == {"fps", "exp", "jaw", "head", "gaze", "exp_names",
                                "model_id", "head_id"}
        assert d["exp"].shape == (n_rows, len(EXP_NAMES)) and d["exp"].dtype == np.float32
        assert d["jaw"].shape == (n_rows, 3) and d["jaw"].dtype == np.float32
        assert list(d["exp_names"]) == EXP_NAMES and str(d["model_id"]) == "tiny_model"
        assert str(d["head_id"]) == "flame2020" and float(d["fps"]) == fps
        assert np.isfinite(d["exp"]).all() and np.isfinite(d["jaw"]).all()
    assert summary["frames"] == n_rows
    assert ("inference", 1, 1) in seen and seen[-1] == ("write", 1, 1)
    assert [p.name for p in out.parent.iterdir()] == ["RESULT.npz"]  # no temp files left


def test_models_are_cached_between_requests(tmp_path, tiny_ckpt, ramp_wav):
    req = _request(ramp_wav, model=str(tiny_ckpt), audio_end_s=1.0)
    run_request(req, tmp_path / "a.npz")
    model = inference.get_model(str(tiny_ckpt))[0]
    run_request(req, tmp_path / "b.npz")
    assert inference.get_model(str(tiny_ckpt))[0] is model
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        np.testing.assert_array_equal(a["exp"], b["exp"])  # deterministic


def test_cached_model_is_reloaded_when_its_folder_is_resaved(tmp_path, ramp_wav):
    config = tiny_config(EXP_NAMES)
    folder = tmp_path / "m"
    torch.manual_seed(10)
    save_checkpoint(build_model(config), config, folder)
    first = inference.get_model(folder)[0]
    assert inference.get_model(folder)[0] is first
    torch.manual_seed(11)
    save_checkpoint(build_model(config), config, folder)  # retrained in place
    second = inference.get_model(folder)[0]
    assert second is not first
    assert not torch.equal(first.style.weight, second.style.weight)


@pytest.mark.parametrize("change,kind", [
    ({"frame_count": 40}, "bad_request"),  # 2.0 s at 25 fps is 50 frames
    ({"fps": -5}, "bad_request"),
    ({"fps": "25"}, "bad_request"),
    ({"audio": None}, "bad_request"),
    ({"audio_start_s": 3.0, "audio_end_s": 2.0}, "bad_request"),
    ({"identity": "nobody"}, "bad_request"),
    ({"emotion": "happy"}, "bad_request"),
    ({"emotion": {"names": ["gleeful"], "weights": [[1.0]]}}, "bad_request"),
    ({"intensity": [0.5] * 10}, "bad_request"),  # neither 1 row nor one per frame
    ({"audio_start_s": 1.99, "audio_end_s": 2.02, "fps": 100}, "too_short"),
    ({"audio": "/no/such/file.wav"}, "missing_file"),
    ({"model": "/no/such/model"}, "missing_file"),
])
def test_bad_requests_leave_the_old_file_alone(tmp_path, tiny_ckpt, ramp_wav, change, kind):
    out = tmp_path / "RESULT.npz"
    out.write_bytes(b"the user's earlier result")
    req = _request(ramp_wav, model=str(tiny_ckpt), audio_start_s=1.0, audio_end_s=3.0)
    req.update(change)
    with pytest.raises(EmoteInputError) as info:
        run_request(req, out)
    assert info.value.kind == kind, info.value.message
    assert list(tmp_path.iterdir()) == [out]  # no temporary left behind
    assert out.read_bytes() == b"the user's earlier result"


def test_frame_count_within_one_frame_is_accepted(tmp_path, tiny_ckpt, ramp_wav):
    req = _request(ramp_wav, model=str(tiny_ckpt), audio_end_s=2.0, frame_count=51)
    run_request(req, tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as d:
        assert d["exp"].shape[0] == 51


def test_default_model_missing_is_a_clear_error(tmp_path, ramp_wav, monkeypatch):
    monkeypatch.setenv("EMOTE_DEFAULT_MODEL_DIR", str(tmp_path / "no_model"))
    with pytest.raises(EmoteInputError) as info:
        run_request(_request(ramp_wav), tmp_path / "r.npz")
    assert info.value.kind == "no_default_model"
    assert not (tmp_path / "r.npz").exists()


def test_jaw_slerp_is_linear_in_angle_and_takes_the_short_way():
    angles = np.linspace(0.0, 0.5, 26)  # 1 s about a fixed tilted axis at 25 fps
    axis = np.array([1.0, 0.2, -0.1]) / np.linalg.norm([1.0, 0.2, -0.1])
    out = resample_rotations(angles[:, None] * axis, 25, 60, 70)
    t = np.minimum(np.arange(70) / 60, 1.0)
    np.testing.assert_allclose(out, (0.5 * t)[:, None] * axis, atol=1e-9)
    # 170 deg then -170 deg about z are 20 deg apart: the midpoint is 180 deg, not 0
    z = np.array([[0, 0, np.radians(170)], [0, 0, -np.radians(170)]])
    mid = resample_rotations(z, 1, 2, 2)[1]
    assert abs(np.linalg.norm(mid) - np.pi) < 1e-6
    np.testing.assert_allclose(resample_rotations(np.zeros((3, 3)), 25, 30, 4), 0.0)
