"""Blinks, gaze and head motion made from the speech itself, so a take looks alive.

EMOTE's network animates only expression and jaw. This module adds the rest a viewer expects,
procedurally and deterministically from a seed (numpy and scipy only, no torch, no bpy):

- blinks: about 10 to 20 a minute, more likely just after a pause begins (ends of phrases and
  sentences), with natural lid timing (a quick close, a short hold, a slower opening);
- gaze: fixations held for a second or so, joined by quick saccades of a few degrees (shorter
  fixations while speaking), a little drift in between;
- head motion: a slow sway while speaking and small nods on stressed syllables (the loudest
  onsets of the energy envelope), within +-6 degrees.

Units: radians and output frames. Head rotations are FLAME model space axis-angles (x right, y up,
z out of the face: +x nods the face down, +y turns it to the character's left, +z tilts it);
gaze is (yaw, pitch) of both eyes, +yaw toward the character's left (+x), +pitch up.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000
HEAD_LIMIT_DEG = 6.0  # the head never turns further than this from rest (at strength <= 1)
GAZE_LIMIT_DEG = (14.0, 9.0)  # yaw, pitch of the widest fixations
TRACKS = ("blinks", "gaze", "head_motion")
DEFAULTS = {"blinks": 1.0, "gaze": 1.0, "head_motion": 1.0, "seed": 0}
MAX_STRENGTH = 2.0

# Blink timing (seconds): lids close fast, hold briefly, open more slowly.
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.08, 0.04, 0.20
BLINK_MEAN_INTERVAL_S = 5.2  # spontaneous blinks: ~11 a minute before pause-triggered ones
BLINK_MIN_INTERVAL_S = 1.6
PAUSE_BLINK_MIN_GAP_S = 2.4  # a pause triggers a blink only this long after the last one
PAUSE_BLINK_PROB = 0.7
MIN_PAUSE_S = 0.25


def settings(alive: dict | None) -> dict:
    """Normalised alive settings: strengths in 0..MAX_STRENGTH and an integer seed."""
    out = dict(DEFAULTS)
    out.update({k: v for k, v in (alive or {}).items() if k in DEFAULTS})
    for k in TRACKS:
        out[k] = float(min(max(float(out[k]), 0.0), MAX_STRENGTH))
    out["seed"] = int(out["seed"])
    return out


def make_tracks(audio16k: np.ndarray, fps: float, n_frames: int, alive: dict | None = None
                ) -> dict[str, np.ndarray]:
    """The procedural tracks of a clip.

    audio16k: (N,) float mono at 16 kHz, the span the result covers (frame 0 at sample 0).
    fps, n_frames: the result's frame rate and length.
    alive: {"blinks", "gaze", "head_motion": strength 0..2 (0 turns it off), "seed": int}.
    Returns blink (T,) lid closure 0..1 (both eyes), gaze (T, 2) yaw/pitch radians and head
    (T, 3) axis-angle radians, float32; a track whose strength is 0 is all zero. Each track has
    its own random stream, so switching one off leaves the others as they were.
    """
    cfg = settings(alive)
    n = int(n_frames)
    feats = speech_features(audio16k, fps, n)
    out = {"blink": np.zeros(n, np.float32), "gaze": np.zeros((n, 2), np.float32),
           "head": np.zeros((n, 3), np.float32)}
    if cfg["blinks"] > 0:
        rng = np.random.default_rng([cfg["seed"], 1])
        out["blink"] = (cfg["blinks"] * blink_track(feats, fps, n, rng)).clip(0, 1).astype(
            np.float32)
    if cfg["gaze"] > 0:
        rng = np.random.default_rng([cfg["seed"], 2])
        out["gaze"] = (cfg["gaze"] * gaze_track(feats, fps, n, rng)).astype(np.float32)
    if cfg["head_motion"] > 0:
        rng = np.random.default_rng([cfg["seed"], 3])
        head = cfg["head_motion"] * head_track(feats, fps, n, rng)
        out["head"] = soft_limit(head, math.radians(HEAD_LIMIT_DEG) * max(
            1.0, cfg["head_motion"])).astype(np.float32)
    return out


def speech_features(audio16k: np.ndarray, fps: float, n_frames: int) -> dict[str, np.ndarray]:
    """Per-frame speech cues: `db` loudness relative to the clip's loud parts, `speech` (bool),
    `pause_onsets` (frames where a pause of >= MIN_PAUSE_S begins), `accents` (frames of stressed
    syllables) with `accent_strength` 0..1."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    x = np.asarray(audio16k, dtype=np.float64).reshape(-1)
    n = int(n_frames)
    centres = (np.arange(n) + 0.5) / fps * SAMPLE_RATE
    half = int(0.0125 * SAMPLE_RATE)  # 25 ms analysis window around each frame's centre
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.clip(centres.astype(np.int64) - half, 0, x.size)
    hi = np.clip(centres.astype(np.int64) + half, 0, x.size)
    power = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    db = 10.0 * np.log10(power + 1e-10)
    loud = np.percentile(db, 95) if n else 0.0
    floor = np.percentile(db, 10) if n else 0.0
    db = db - loud
    thresh = min(max(-30.0, floor - loud + 10.0), -8.0)  # 10 dB over the noise floor
    speech = db > thresh
    # Close gaps shorter than MIN_PAUSE_S (stops and short silences inside words) ...
    min_pause = max(1, int(round(MIN_PAUSE_S * fps)))
    speech = _fill_short_runs(speech, False, min_pause)
    # ... and drop specks of "speech" shorter than 60 ms (clicks, breaths).
    speech = _fill_short_runs(speech, True, max(1, int(round(0.06 * fps))))
    onsets = np.nonzero(speech[:-1] & ~speech[1:])[0] + 1 if n > 1 else np.zeros(0, np.int64)
    # Accents: peaks of the rise in loudness (syllable onsets), the prominent ones only.
    smooth = uniform_filter1d(np.maximum(db, thresh), size=max(1, int(round(0.06 * fps))))
    rise = np.diff(smooth, prepend=smooth[:1]) if n else smooth
    rise = np.where(speech, np.maximum(rise, 0.0), 0.0)
    rise = uniform_filter1d(rise, size=max(1, int(round(0.08 * fps))))
    if n > 2 and rise.max() > 0:
        peaks, props = find_peaks(rise, distance=max(1, int(round(0.3 * fps))),
                                  prominence=0.25 * np.percentile(rise[speech], 90)
                                  if speech.any() else np.inf)
        strength = props["prominences"] / max(props["prominences"].max(), 1e-9) if len(
            peaks) else np.zeros(0)
    else:
        peaks, strength = np.zeros(0, np.int64), np.zeros(0)
    return {"db": db, "speech": speech, "pause_onsets": onsets, "accents": peaks,
            "accent_strength": strength}


def _fill_short_runs(mask: np.ndarray, value: bool, min_len: int) -> np.ndarray:
    """Flip runs of `value` shorter than `min_len` frames that lie between other runs."""
    m = mask.copy()
    n = m.size
    i = 0
    while i < n:
        if m[i] != value:
            i += 1
            continue
        j = i
        while j < n and m[j] == value:
            j += 1
        if j - i < min_len and i > 0 and j < n:
            m[i:j] = not value
        i = j
    return m


def blink_track(feats: dict, fps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) lid closure 0..1: spontaneous blinks at gamma-distributed intervals, plus one soon
    after most pause onsets; each blink peaks on a frame so every frame rate shows it closed."""
    peaks = blink_times(feats["pause_onsets"] / fps, n / fps, rng)
    t = np.arange(n) / fps
    out = np.zeros(n)
    for p in peaks:
        k = int(round(p * fps))
        if not 0 <= k < n:
            continue
        amp = rng.uniform(0.92, 1.0)
        out = np.maximum(out, amp * blink_shape(t - k / fps))
    return out


def blink_times(pause_onsets_s: np.ndarray, duration_s: float, rng: np.random.Generator
                ) -> list[float]:
    """Times (s) at which the lids are fully closed."""
    times: list[float] = []
    pauses = [float(p) + rng.uniform(0.06, 0.2) for p in sorted(pause_onsets_s)]
    t_next = rng.uniform(0.3, 2.0)  # the first blink comes soon, not always at the same moment
    pi = 0
    while True:
        if pi < len(pauses) and pauses[pi] < t_next:  # a pause comes first: it may trigger one
            p = pauses[pi]
            pi += 1
            last = times[-1] if times else -1e9
            if p - last >= PAUSE_BLINK_MIN_GAP_S and rng.random() < PAUSE_BLINK_PROB:
                times.append(p)
                t_next = p + _interval(rng)
            continue
        if t_next >= duration_s:
            break
        times.append(t_next)
        t_next += _interval(rng)
    return [x for x in times if x < duration_s]


def _interval(rng: np.random.Generator) -> float:
    return max(BLINK_MIN_INTERVAL_S, rng.gamma(5.0, BLINK_MEAN_INTERVAL_S / 5.0))


def blink_shape(dt: np.ndarray) -> np.ndarray:
    """Lid closure at time `dt` (s) from the moment of full closure: a smooth close over
    BLINK_CLOSE_S, a hold, then an ease-out opening over BLINK_OPEN_S."""
    dt = np.asarray(dt, dtype=np.float64)
    h = BLINK_HOLD_S / 2
    close = np.clip((dt + h + BLINK_CLOSE_S) / BLINK_CLOSE_S, 0, 1)
    open_ = np.clip(1 - (dt - h) / BLINK_OPEN_S, 0, 1)
    s_close = close * close * (3 - 2 * close)
    s_open = 1 - (1 - open_) ** 2  # fast at first, then settling
    return np.where(dt < -h, s_close, np.where(dt > h, s_open ** 1.5, 1.0))


def gaze_track(feats: dict, fps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) yaw/pitch radians: fixations (about 0.9 s while speaking, 1.6 s in pauses) joined
    by saccades of at least 2.5 degrees lasting ~40-70 ms (the main sequence), mostly near the
    listener (straight ahead), with a slow drift of a few tenths of a degree."""
    speech = feats["speech"]
    t_end = n / fps
    targets = [(0.0, 0.0)]
    starts = [0.0]
    t = rng.uniform(0.2, 0.8)
    cur = np.zeros(2)
    while t < t_end:
        k = min(int(t * fps), n - 1)
        for _ in range(20):  # a new target well away from the current one
            if rng.random() < 0.35:  # back toward the listener
                cand = rng.normal(0, [1.5, 1.0])
            else:
                cand = rng.normal(0, [GAZE_LIMIT_DEG[0] / 2.2, GAZE_LIMIT_DEG[1] / 2.5])
            cand = np.clip(cand, [-GAZE_LIMIT_DEG[0], -GAZE_LIMIT_DEG[1]], list(GAZE_LIMIT_DEG))
            if np.linalg.norm(cand - cur) >= 2.5:
                break
        cur = cand
        targets.append((float(cur[0]), float(cur[1])))
        starts.append(t)
        mean = 0.9 if speech[k] else 1.6
        t += float(np.clip(rng.gamma(4.0, mean / 4.0), 0.35, 3.5))
    tt = np.arange(n) / fps
    out = np.zeros((n, 2))
    out[:] = targets[0]
    for i in range(1, len(targets)):
        prev, nxt = np.array(targets[i - 1]), np.array(targets[i])
        amp = float(np.linalg.norm(nxt - prev))
        dur = 0.025 + 0.0025 * amp  # saccade duration from its amplitude
        u = np.clip((tt - starts[i]) / dur, 0, 1)
        s = u * u * (3 - 2 * u)
        sel = tt >= starts[i]
        out[sel] = prev + (nxt - prev) * s[sel, None]
    drift = _smooth_noise(rng, n, fps, 0.4, 2) * 0.3
    return np.radians(out + drift)


def head_track(feats: dict, fps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) axis-angle radians: sway (0.1-0.5 Hz, larger while speaking) plus a nod (the face
    dips then returns over ~0.4 s) on each accent, growing with the square of its prominence so
    the strongest beats of a phrase show and the other syllables barely move the head."""
    speech = feats["speech"].astype(np.float64)
    activity = _lowpass(speech, fps, 0.6)
    sway = _smooth_noise(rng, n, fps, 0.35, 3) * np.array([1.2, 1.8, 0.8])
    sway *= (0.45 + 0.55 * activity)[:, None]
    nod = np.zeros(n)
    tau = 0.13  # s: the nod's dip peaks at tau, then settles
    length = int(round(6 * tau * fps)) + 1
    tk = np.arange(length) / fps
    kernel = (tk / tau) * np.exp(1 - tk / tau)
    for k, s in zip(feats["accents"], feats["accent_strength"]):
        amp = 2.5 * s * s * rng.uniform(0.7, 1.1)  # the most stressed syllables nod most
        stop = min(n, k + length)
        nod[k:stop] += amp * kernel[:stop - k]
    nod = _soft(nod, 3.5)
    deg = sway + np.stack([nod, 0.25 * nod * rng.choice([-1, 1]), np.zeros(n)], axis=1)
    return np.radians(deg)


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, f_max: float, k: int
                  ) -> np.ndarray:
    """(n, 2 or 3) unit-ish band-limited noise: sums of `k` sinusoids per axis below f_max Hz."""
    axes = 3 if k == 3 else 2
    t = np.arange(n) / fps
    out = np.zeros((n, axes))
    for a in range(axes):
        for _ in range(k):
            f = rng.uniform(0.08, f_max)
            out[:, a] += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        out[:, a] /= math.sqrt(k / 2)
    return out


def _lowpass(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(x, dtype=np.float64), sigma=max(seconds * fps / 2, 1e-3),
                             mode="nearest")


def _soft(x: np.ndarray, limit: float) -> np.ndarray:
    return limit * np.tanh(np.asarray(x) / limit)


def soft_limit(aa: np.ndarray, limit_rad: float) -> np.ndarray:
    """Axis-angles (n, 3) whose angle is squeezed smoothly below `limit_rad`."""
    ang = np.linalg.norm(aa, axis=1, keepdims=True)
    squeezed = limit_rad * np.tanh(ang / limit_rad)
    return aa * np.where(ang > 1e-12, squeezed / np.maximum(ang, 1e-12), 1.0)


def combine_blinks(exp: np.ndarray, exp_names: list[str], blink: np.ndarray
                   ) -> tuple[np.ndarray, list[str]]:
    """Put the blink track into the result's eyeBlink_L/R channels.

    Where the model has them (ARKit heads) the lid follows the larger of the model's value and the
    blink, and is left exactly as the model made it on frames without a blink; a FLAME model's
    result gets eyeBlink_L and eyeBlink_R appended as extra named channels.
    """
    exp = np.array(exp, dtype=np.float32, copy=True)
    names = list(exp_names)
    blink = np.asarray(blink, dtype=np.float32).reshape(-1)
    for side in ("eyeBlink_L", "eyeBlink_R"):
        if side in names:
            col = names.index(side)
            exp[:, col] = np.where(blink > 0, np.maximum(exp[:, col], blink), exp[:, col])
        else:
            exp = np.concatenate([exp, blink[:, None]], axis=1)
            names.append(side)
    return exp, names


def count_blinks(blink: np.ndarray, level: float = 0.5) -> int:
    """How many times a lid track rises through `level`."""
    b = np.asarray(blink).reshape(-1)
    return int(np.sum((b[1:] >= level) & (b[:-1] < level)))


def count_gaze_shifts(gaze: np.ndarray, fps: float, min_deg: float = 2.0,
                      within_s: float = 0.2) -> int:
    """Saccades: moves of more than `min_deg` within `within_s`, counted once per move."""
    g = np.degrees(np.asarray(gaze, dtype=np.float64))
    lag = max(1, int(round(within_s * fps)))
    if g.shape[0] <= lag:
        return 0
    moved = np.linalg.norm(g[lag:] - g[:-lag], axis=1) > min_deg
    return int(np.sum(moved[1:] & ~moved[:-1]) + int(moved[0]))
