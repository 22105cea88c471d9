"""Audio input: formats, sample rates, channel mixing, span reading and every bad-input kind."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emote.model_runtime.audio import SAMPLE_RATE, load_audio
from emote.model_runtime.errors import EmoteInputError


def _tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def _expect(kind: str, *args, **kwargs) -> EmoteInputError:
    with pytest.raises(EmoteInputError) as info:
        load_audio(*args, **kwargs)
    assert info.value.kind == kind, info.value.message
    assert len(info.value.message) > 20
    return info.value


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 192000])
def test_sample_rates_resample_to_16k_keeping_pitch(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, _tone(rate, 1.5, 440.0), rate, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 1.5 * SAMPLE_RATE) <= 1
    assert abs(_peak_hz(audio) - 440.0) < 2.0
    mid = audio[4000:-4000]  # amplitude kept (no resampler gain error)
    assert abs(np.sqrt(np.mean(mid ** 2)) - 0.5 / np.sqrt(2)) < 0.01


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg")])
def test_formats(tmp_path, fmt, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, _tone(48000, 1.0, 300.0), 48000, format=fmt)
    audio = load_audio(path)
    assert abs(len(audio) - SAMPLE_RATE) <= 1
    assert abs(_peak_hz(audio) - 300.0) < 2.0


def test_mp3(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("the installed libsndfile has no MP3 support")
    path = tmp_path / "tone.mp3"
    try:
        sf.write(path, _tone(44100, 1.0, 300.0), 44100, format="MP3")
    except Exception as exc:  # decoding may be there without an encoder
        pytest.skip(f"libsndfile cannot write MP3 here: {exc}")
    audio = load_audio(path)
    assert abs(len(audio) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # encoder delay/padding
    assert abs(_peak_hz(audio) - 300.0) < 3.0


def test_stereo_and_six_channels_mix_to_mono(tmp_path):
    left, right = _tone(16000, 1.0, 200.0), _tone(16000, 1.0, 900.0, amp=0.2)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "st.wav"), (left + right) / 2, atol=1e-6)
    six = np.stack([_tone(16000, 1.0, 100.0 * (c + 1), amp=0.1) for c in range(6)], 1)
    sf.write(tmp_path / "six.wav", six, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav"), six.mean(1), atol=1e-6)


def test_span_reads_only_the_requested_part(tmp_path):
    rate = 16000
    ramp = (np.arange(rate * 4) / (rate * 4)).astype(np.float32)  # value encodes time
    sf.write(tmp_path / "ramp.wav", ramp, rate, subtype="FLOAT")
    part = load_audio(tmp_path / "ramp.wav", start_s=1.0, end_s=1.5)
    assert len(part) == rate // 2
    np.testing.assert_allclose(part, ramp[rate:rate + rate // 2], atol=1e-7)
    tail = load_audio(tmp_path / "ramp.wav", start_s=3.0)  # end None = to end of file
    np.testing.assert_allclose(tail, ramp[3 * rate:], atol=1e-7)
    beyond = load_audio(tmp_path / "ramp.wav", start_s=3.5, end_s=10.0)  # end clamps to file
    assert len(beyond) == rate // 2


def test_span_at_other_rate_starts_at_the_right_time(tmp_path):
    rate = 44100
    x = np.zeros(rate * 3, dtype=np.float32)
    x[int(2.0 * rate):] = 0.5  # a step at 2.0 s
    sf.write(tmp_path / "step.wav", x, rate, subtype="FLOAT")
    part = load_audio(tmp_path / "step.wav", start_s=1.5)
    onset = int(np.argmax(part > 0.25))
    assert abs(onset - 0.5 * SAMPLE_RATE) <= 2


def test_silence_is_valid(tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000)
    assert not load_audio(tmp_path / "quiet.wav").any()


def test_missing_and_unreadable_files(tmp_path):
    err = _expect("missing_file", tmp_path / "nope.wav")
    assert "nope.wav" in err.message
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file" * 20)
    _expect("unreadable_file", tmp_path / "junk.wav")
    _expect("unreadable_file", tmp_path)  # a folder
    (tmp_path / "voice.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 200)
    assert "WAV" in _expect("unsupported_format", tmp_path / "voice.m4a").message


@pytest.mark.parametrize("rate", [4000, 200000])
def test_sample_rate_out_of_range(tmp_path, rate):
    sf.write(tmp_path / "odd.wav", _tone(rate, 0.5), rate)
    assert str(rate) in _expect("unsupported_format", tmp_path / "odd.wav").message


def test_empty_and_too_short(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    _expect("empty_audio", tmp_path / "empty.wav")
    (tmp_path / "zero.wav").write_bytes(b"")
    _expect("empty_audio", tmp_path / "zero.wav")
    sf.write(tmp_path / "blip.wav", np.zeros(160, np.float32), 16000)  # 10 ms
    _expect("too_short", tmp_path / "blip.wav", fps=25)
    assert len(load_audio(tmp_path / "blip.wav", fps=100)) == 160  # exactly one frame at 100 fps


def test_nan_samples(tmp_path):
    x = _tone(16000, 0.5)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    _expect("bad_samples", tmp_path / "nan.wav")
    x[100] = np.inf
    sf.write(tmp_path / "inf.wav", x, 16000, subtype="FLOAT")
    _expect("bad_samples", tmp_path / "inf.wav")
    assert len(load_audio(tmp_path / "nan.wav", start_s=0.1)) == 6400  # span after the NaN is fine
    x[100], x[1500] = 0.0, np.nan  # just before the span: must not leak in through resampling
    sf.write(tmp_path / "near.wav", x, 16000, subtype="FLOAT")
    assert np.isfinite(load_audio(tmp_path / "near.wav", start_s=0.1)).all()
    sf.write(tmp_path / "near44.wav", np.repeat(x, 3), 48000, subtype="FLOAT")
    assert np.isfinite(load_audio(tmp_path / "near44.wav", start_s=0.1)).all()


def test_bad_spans(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(16000, 1.0), 16000)
    path = tmp_path / "a.wav"
    _expect("bad_request", path, start_s=0.5, end_s=0.5)
    _expect("bad_request", path, start_s=0.6, end_s=0.2)
    _expect("bad_request", path, start_s=-0.1)
    _expect("bad_request", path, start_s=float("nan"))
    assert "long" in _expect("bad_request", path, start_s=2.0).message
