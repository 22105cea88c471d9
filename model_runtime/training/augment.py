"""Audio augmentation toward real recordings, keeping phone timings exact.

Speed/vocal-tract warping (resampling; timings scale with it), gain, noise, synthetic room reverb,
telephone band at 8 kHz with and without mu-law or GSM, resampling chains and lossy codecs
(delay-compensated). Every step works on 16 kHz float32 mono.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

SR = 16000


def speed_warp(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster by resampling: pitch and formants rise together (new speaker);
    phone times scale by 1 / factor."""
    up = 400
    down = int(round(up * factor))
    return resample_poly(audio, up, down).astype(np.float32)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels and soft-clip."""
    return np.tanh(audio * 10 ** (db / 20)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white"):
    """Add white, pink or brown noise at the given signal-to-noise ratio."""
    n = rng.standard_normal(len(audio))
    if colour != "white":
        f = np.fft.rfftfreq(len(audio), 1 / SR)
        spec = np.fft.rfft(n) / np.maximum(f, 20.0) ** (0.5 if colour == "pink" else 1.0)
        n = np.fft.irfft(spec, len(audio))
    p_sig = np.mean(audio.astype(np.float64) ** 2) + 1e-12
    n *= np.sqrt(p_sig / (np.mean(n ** 2) + 1e-12) / 10 ** (snr_db / 10))
    return (audio + n).astype(np.float32)


def room_reverb(audio: np.ndarray, rt60: float, rng: np.random.Generator, wet: float = 0.5):
    """Convolve with a synthetic exponentially decaying room response (direct path at t = 0)."""
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[: int(0.003 * SR)] = 0.0  # first reflections after 3 ms
    rir *= wet / (np.sqrt(np.sum(rir ** 2)) + 1e-9)
    rir[0] = 1.0
    y = fftconvolve(audio, rir)[: len(audio)]
    return (y / (np.max(np.abs(y)) + 1e-9) * np.max(np.abs(audio))).astype(np.float32)


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit mu-law encode and decode (G.711 style quantisation)."""
    x = np.clip(x, -1, 1)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


def telephone(audio: np.ndarray, codec: str = "none") -> np.ndarray:
    """300-3400 Hz band, 8 kHz sampling, optional mu-law or GSM, back to 16 kHz."""
    sos = butter(4, [300, 3400], btype="band", fs=SR, output="sos")
    y = sosfilt(sos, audio)
    y8 = resample_poly(y, 1, 2)
    if codec == "mulaw":
        y8 = mu_law(y8 / (np.max(np.abs(y8)) + 1e-9) * 0.9)
    elif codec == "gsm" and shutil.which("sox"):
        y8 = _sox_roundtrip(y8, 8000, ["-t", "gsm"])
    return resample_poly(y8, 2, 1).astype(np.float32)[: len(audio)]


def resample_chain(audio: np.ndarray, rates: tuple[int, ...]) -> np.ndarray:
    """Resample through the given rates and back to 16 kHz (band limits and filter colour)."""
    y, sr = audio, SR
    for r in tuple(rates) + (SR,):
        g = np.gcd(r, sr)
        y = resample_poly(y, r // g, sr // g)
        sr = r
    return y.astype(np.float32)[: len(audio)]


def _sox_roundtrip(x: np.ndarray, sr: int, fmt: list[str]) -> np.ndarray:
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="aug_") as tmp:
        a, b, c = (os.path.join(tmp, n) for n in ("a.wav", "b.raw", "c.wav"))
        sf.write(a, np.clip(x / (np.max(np.abs(x)) + 1e-9) * 0.9, -1, 1), sr, subtype="PCM_16")
        subprocess.run(["sox", a] + fmt + [b], check=True, capture_output=True, timeout=60)
        subprocess.run(["sox"] + fmt + ["-r", str(sr), "-c", "1", b, c], check=True,
                       capture_output=True, timeout=60)
        y, _ = sf.read(c, dtype="float32")
    return _match(y, x)


def lossy_codec(audio: np.ndarray, codec: str = "mp3", bitrate: str = "32k") -> np.ndarray:
    """Encode and decode with ffmpeg (mp3 or opus); encoder delay removed by cross-correlation."""
    import soundfile as sf

    if not shutil.which("ffmpeg"):
        return audio
    ext = {"mp3": "mp3", "opus": "ogg"}[codec]
    lib = {"mp3": "libmp3lame", "opus": "libopus"}[codec]
    with tempfile.TemporaryDirectory(prefix="aug_") as tmp:
        a, b, c = (os.path.join(tmp, n) for n in ("a.wav", "b." + ext, "c.wav"))
        sf.write(a, np.clip(audio, -1, 1), SR, subtype="PCM_16")
        q = ["-loglevel", "error", "-y"]
        subprocess.run(["ffmpeg", *q, "-i", a, "-c:a", lib, "-b:a", bitrate, b], check=True,
                       capture_output=True, timeout=120)
        subprocess.run(["ffmpeg", *q, "-i", b, "-ar", str(SR), "-ac", "1", c], check=True,
                       capture_output=True, timeout=120)
        y, _ = sf.read(c, dtype="float32")
    return _match(y, audio)


def _match(y: np.ndarray, ref: np.ndarray, max_lag: int = 1600) -> np.ndarray:
    """Shift y to best line up with ref (codec delay) and cut/pad to ref's length."""
    n = min(len(y), len(ref))
    if n > 2 * max_lag:
        c = fftconvolve(y[:n], ref[:n][::-1], mode="full")
        mid = n - 1
        lag = int(np.argmax(c[mid - max_lag: mid + max_lag + 1])) - max_lag
    else:
        lag = 0
    if lag > 0:
        y = y[lag:]
    elif lag < 0:
        y = np.concatenate([np.zeros(-lag, np.float32), y])
    out = np.zeros(len(ref), np.float32)
    out[: min(len(ref), len(y))] = y[: len(ref)]
    return out


def random_augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str, float]:
    """A random chain: (audio, description, time_scale for the phone timings).

    About 40% of the outputs are telephone band (the dev set is 8 kHz telephone prompts).
    """
    steps: list[str] = []
    scale = 1.0
    if rng.uniform() < 0.5:
        f = float(rng.uniform(0.88, 1.14))
        audio = speed_warp(audio, f)
        scale = 1.0 / f
        steps.append(f"warp{f:.2f}")
    if rng.uniform() < 0.25:
        rt = float(rng.uniform(0.15, 0.7))
        audio = room_reverb(audio, rt, rng, wet=float(rng.uniform(0.2, 0.7)))
        steps.append(f"reverb{rt:.2f}")
    u = rng.uniform()
    if u < 0.4:
        codec = str(rng.choice(["none", "mulaw", "gsm"], p=[0.35, 0.45, 0.2]))
        audio = telephone(audio, codec)
        steps.append(f"tel8k-{codec}")
    elif u < 0.55:
        rates = [(8000,), (11025,), (22050, 8000), (11025, 22050)][int(rng.integers(4))]
        audio = resample_chain(audio, rates)
        steps.append("rs" + "-".join(map(str, rates)))
    elif u < 0.65:
        codec = str(rng.choice(["mp3", "opus"]))
        br = str(rng.choice(["16k", "24k", "32k"]))
        audio = lossy_codec(audio, codec, br)
        steps.append(f"{codec}{br}")
    if rng.uniform() < 0.35:
        snr = float(rng.uniform(10, 35))
        colour = str(rng.choice(["white", "pink", "brown"]))
        audio = add_noise(audio, snr, rng, colour)
        steps.append(f"noise-{colour}{snr:.0f}dB")
    db = float(rng.uniform(-12, 6))
    peak = float(np.max(np.abs(audio)) + 1e-9)
    audio = gain(audio / peak * 0.5, db)
    steps.append(f"gain{db:+.0f}dB")
    return audio.astype(np.float32), "+".join(steps), scale


# --- channel and speaker robustness (issue 14 part 3) -------------------------------------------
# Channels a training clip is heard through, in equal shares so no channel is "the" real one:
# wideband 16 kHz (studio, as an animator records), 11,025 Hz game audio (5.5 kHz band) and
# 8 kHz telephone band (300-3400 Hz).
CHANNELS = ("wide16k", "game11k", "tel8k")
VTL_RANGE = (0.88, 1.14)   # vocal-tract length / pitch factor (formants and f0 scale together)
RATE_RANGE = (0.85, 1.18)  # speaking rate (phone timings scale by 1 / rate)


def time_stretch(audio: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Play `rate` times faster without changing pitch or formants (phase vocoder).

    Output length is round(len / rate); phone times scale by 1 / rate.
    """
    from scipy.signal import istft, stft

    audio = np.asarray(audio, np.float32)
    if abs(rate - 1.0) < 1e-6:
        return audio.copy()
    _, _, Z = stft(audio, nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros", padded=True)
    n_in = Z.shape[1]
    steps = np.arange(0, n_in - 1, rate)
    omega = 2 * np.pi * hop * np.arange(Z.shape[0]) / n_fft  # expected phase advance per hop
    phase = np.angle(Z[:, 0])
    out = np.empty((Z.shape[0], len(steps)), np.complex64)
    for k, t in enumerate(steps):
        i = int(t)
        frac = t - i
        mag = (1 - frac) * np.abs(Z[:, i]) + frac * np.abs(Z[:, i + 1])
        out[:, k] = mag * np.exp(1j * phase)
        dphi = np.angle(Z[:, i + 1]) - np.angle(Z[:, i]) - omega
        dphi -= 2 * np.pi * np.round(dphi / (2 * np.pi))
        phase = phase + omega + dphi
    _, y = istft(out, nperseg=n_fft, noverlap=n_fft - hop, boundary=True)
    want = int(round(len(audio) / rate))
    y = np.asarray(y[:want], np.float32)
    if len(y) < want:
        y = np.concatenate([y, np.zeros(want - len(y), np.float32)])
    peak_in = float(np.max(np.abs(audio))) + 1e-9
    return (y / (float(np.max(np.abs(y))) + 1e-9) * peak_in).astype(np.float32)


def vocal_tract(audio: np.ndarray, factor: float) -> np.ndarray:
    """Another speaker's voice at the same timing: formants and pitch scaled by `factor`
    (> 1: shorter vocal tract, higher voice) by resampling, then the duration restored."""
    warped = speed_warp(audio, factor)
    y = time_stretch(warped, len(warped) / len(audio))
    return _fit_length(y, len(audio))


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y[:n].astype(np.float32)
    return np.concatenate([y, np.zeros(n - len(y), np.float32)]).astype(np.float32)


def channel(audio: np.ndarray, name: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """The clip as heard through one of CHANNELS (16 kHz out, same length, no delay)."""
    if name == "wide16k":
        return np.asarray(audio, np.float32)
    if name == "game11k":
        return resample_chain(audio, (11025,))
    if name == "tel8k":
        codec = "none" if rng is None else str(rng.choice(["none", "mulaw"]))
        return telephone(audio, codec)
    raise ValueError(f"unknown channel {name!r}; choose from {', '.join(CHANNELS)}")


def robust_augment(audio: np.ndarray, rng: np.random.Generator, channel_name: str | None = None
                   ) -> tuple[np.ndarray, str, float]:
    """Speaker, rate, room, noise and channel augmentation of a real clip:
    (audio, description, time_scale for the phone timings).

    Speaker: vocal-tract/pitch factor in VTL_RANGE (70%); rate in RATE_RANGE (50%); room reverb
    (30%); noise at 10-35 dB SNR (35%); then one of CHANNELS, drawn evenly unless given.
    A 16 kHz source heard as game11k or tel8k loses its upper band; an 11 kHz source heard as
    wide16k keeps its own band (nothing can add the missing one).
    """
    steps: list[str] = []
    scale = 1.0
    y = np.asarray(audio, np.float32)
    if rng.uniform() < 0.7:
        f = float(rng.uniform(*VTL_RANGE))
        y = vocal_tract(y, f)
        steps.append(f"vtl{f:.2f}")
    if rng.uniform() < 0.5:
        r = float(rng.uniform(*RATE_RANGE))
        y = time_stretch(y, r)
        scale = 1.0 / r
        steps.append(f"rate{r:.2f}")
    if rng.uniform() < 0.3:
        rt = float(rng.uniform(0.15, 0.6))
        y = room_reverb(y, rt, rng, wet=float(rng.uniform(0.2, 0.6)))
        steps.append(f"reverb{rt:.2f}")
    if rng.uniform() < 0.35:
        snr = float(rng.uniform(10, 35))
        colour = str(rng.choice(["white", "pink", "brown"]))
        y = add_noise(y, snr, rng, colour)
        steps.append(f"noise-{colour}{snr:.0f}dB")
    ch = channel_name or str(CHANNELS[int(rng.integers(len(CHANNELS)))])
    y = channel(y, ch, rng)
    steps.append(ch)
    db = float(rng.uniform(-12, 6))
    y = gain(y / (float(np.max(np.abs(y))) + 1e-9) * 0.5, db)
    steps.append(f"gain{db:+.0f}dB")
    return y.astype(np.float32), "+".join(steps), scale
