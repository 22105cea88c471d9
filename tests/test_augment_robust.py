"""Channel and speaker augmentation (issue 14 part 3): timing kept or scaled as said, bands
removed as each channel does, formants/pitch moved without moving the phones."""

import numpy as np
import pytest

from emote.model_runtime.training import augment

SR = 16000


def _tone(freq, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


def _onsets(x, thresh=0.2):
    env = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
    on = env > thresh * env.max()
    return np.nonzero(on[1:] & ~on[:-1])[0] + 1


def _bursts(n=32000, at=(8000, 20000)):
    x = np.zeros(n, np.float32)
    for a in at:
        x[a:a + 800] = _tone(1000, 0.05)
    return x


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum() / spec.sum())


def test_time_stretch_changes_duration_not_pitch():
    y = augment.time_stretch(_tone(440), 1.25)
    assert abs(len(y) - SR / 1.25) <= 1
    assert abs(_peak_hz(y) - 440) < 8
    y = augment.time_stretch(_bursts(), 0.8)
    on = _onsets(y)
    assert abs(on[0] - 8000 / 0.8) < 240 and abs(on[1] - 20000 / 0.8) < 240


def test_vocal_tract_moves_pitch_and_keeps_timing():
    y = augment.vocal_tract(_tone(300), 1.12)
    assert len(y) == SR
    assert abs(_peak_hz(y) - 336) < 8
    on = _onsets(augment.vocal_tract(_bursts(), 0.9))
    assert abs(on[0] - 8000) < 240 and abs(on[1] - 20000) < 240


def test_channels_remove_their_bands():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert _band_energy(augment.channel(noise, "wide16k"), 6000, 8000) > 0.2
    assert _band_energy(augment.channel(noise, "game11k"), 6000, 8000) < 0.01
    tel = augment.channel(noise, "tel8k")
    assert _band_energy(tel, 4200, 8000) < 0.01 and _band_energy(tel, 0, 150) < 0.01
    for name in augment.CHANNELS:
        assert len(augment.channel(noise, name)) == SR
    with pytest.raises(ValueError, match="choose from"):
        augment.channel(noise, "radio")


def test_robust_augment_covers_every_channel_and_reports_its_time_scale():
    x = _bursts(16000, (4000, 11000))
    seen = set()
    for i in range(24):
        y, desc, scale = augment.robust_augment(x, np.random.default_rng(i))
        seen.add(next(c for c in augment.CHANNELS if c in desc))
        assert abs(len(y) - len(x) * scale) <= 2
        assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0
    assert seen == set(augment.CHANNELS)
    y, desc, _ = augment.robust_augment(x, np.random.default_rng(0), channel_name="tel8k")
    assert "tel8k" in desc
