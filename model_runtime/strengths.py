"""Per-region strength controls applied to a finished result: tune a take without regenerating.

Plain numpy (Blender's own Python has no scipy), no torch and no bpy: the Blender extension applies
them at bake time from the panel, the command line from its options.

- upper face: brows, lids (not the blinks), cheek squint, nose; scales those channels;
- lower face: mouth, cheeks' puff, tongue and the jaw rotation;
- lip closure: on top of the lower face, the channels that press the lips together
  (mouthClose, mouthPress, mouthRoll);
- smoothing: a Gaussian over time of sigma `smoothing` seconds on expression and jaw.

Blinks (eyeBlink_L/R), gaze and head motion are the generator's own tracks with their own
strengths (model_runtime.alive); these controls leave them as they are.
ARKit channel names are sorted by name. Other names (FLAME `exp###`) need `upper_share`, the
share of each channel's motion above the nose, which the extension measures on the head's
shape keys; without it such a channel gets the mean of the upper and lower strengths and no
lip closure.
"""

from __future__ import annotations

import re

import numpy as np

NEUTRAL = {"upper_face": 1.0, "lower_face": 1.0, "lip_closure": 1.0, "smoothing": 0.0}
MAX_GAIN = 2.0
MAX_SMOOTHING_S = 0.25
BLINK_CHANNELS = ("eyeBlink_L", "eyeBlink_R")
_UPPER = re.compile(r"^(brow|eye|cheeksquint|nose)", re.I)
_LOWER = re.compile(r"^(mouth|jaw|cheekpuff|tongue)", re.I)
_LIPS = re.compile(r"^mouth(close|press|roll)", re.I)


def normalise(strengths: dict | None) -> dict:
    """The four controls, checked: gains in 0..MAX_GAIN, smoothing in 0..MAX_SMOOTHING_S.

    Raises ValueError naming the control that is not a number."""
    out = dict(NEUTRAL)
    for k, v in (strengths or {}).items():
        if k not in NEUTRAL:
            raise ValueError(f"unknown strength control {k!r}; use one of {', '.join(NEUTRAL)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValueError(f"strength {k!r} must be a number, got {v!r}")
        top = MAX_SMOOTHING_S if k == "smoothing" else MAX_GAIN
        out[k] = float(min(max(float(v), 0.0), top))
    return out


def is_neutral(strengths: dict | None) -> bool:
    return normalise(strengths) == NEUTRAL


def region_of(name: str) -> str | None:
    """'upper', 'lower' or None (unknown) for an ARKit-style channel name."""
    if _UPPER.match(name):
        return "upper"
    if _LOWER.match(name):
        return "lower"
    return None


def channel_gains(exp_names: list[str], strengths: dict | None,
                  upper_share: dict[str, float] | None = None) -> np.ndarray:
    """(E,) multipliers of the expression channels (blink channels stay at 1)."""
    s = normalise(strengths)
    up, low = s["upper_face"], s["lower_face"]
    gains = np.ones(len(exp_names))
    for i, name in enumerate(exp_names):
        if name in BLINK_CHANNELS:
            continue
        share = None if upper_share is None else upper_share.get(name)
        if share is None:
            region = region_of(name)
            share = {"upper": 1.0, "lower": 0.0}.get(region, 0.5)
        gains[i] = share * up + (1.0 - share) * low
        if _LIPS.match(name):
            gains[i] *= s["lip_closure"]
    return gains


def apply(result: dict, strengths: dict | None, upper_share: dict[str, float] | None = None
          ) -> dict:
    """A copy of `result` (exp (T, E), jaw (T, 3), exp_names, fps, ...) with the controls applied;
    the other fields (head, gaze, ids) are passed through unchanged. Neutral controls return
    arrays equal to the input."""
    s = normalise(strengths)
    out = dict(result)
    names = [str(n) for n in result["exp_names"]]
    exp = np.asarray(result["exp"], dtype=np.float64)
    jaw = np.asarray(result["jaw"], dtype=np.float64)
    keep = np.array([n in BLINK_CHANNELS for n in names], dtype=bool)
    if s["smoothing"] > 0 and exp.shape[0] > 1:
        sigma = s["smoothing"] * float(result["fps"])
        exp = np.where(keep[None, :], exp, gaussian_smooth(exp, sigma))
        jaw = gaussian_smooth(jaw, sigma)
    exp = exp * channel_gains(names, s, upper_share)[None, :]
    jaw = jaw * s["lower_face"]
    out["exp"] = exp.astype(np.float32)
    out["jaw"] = jaw.astype(np.float32)
    return out


def gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian filter of (T, C) along time, the ends held (scipy's mode="nearest"); written
    here because this runs inside Blender, whose Python has numpy but not scipy."""
    x = np.asarray(x, dtype=np.float64)
    if sigma_frames <= 0 or x.shape[0] < 2:
        return x.copy()
    radius = max(1, int(4.0 * sigma_frames + 0.5))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, axis=0), x,
                             np.repeat(x[-1:], radius, axis=0)], axis=0)
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = np.convolve(padded[:, c], k, mode="valid")
    return out
