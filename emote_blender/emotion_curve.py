"""Turn the keyframed emotion category and intensity into the per-frame tracks a request needs.

The animator keyframes `emotion` (an enum) and `intensity` like any property; we evaluate their
F-curves once per scene frame over the strip, then blend category changes into mixture weights.
"""

from __future__ import annotations

import numpy as np

# EMOTE order (DESIGN.md): the index of each name is its category value in the enum property.
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry",
                             "contempt")


def blend_categories(categories: np.ndarray, fps: float, transition_s: float) -> np.ndarray:
    """Per-frame category indices (N,) -> mixture weights (N, 8) whose rows sum to 1.

    Each change of category becomes a linear cross-fade of `transition_s` seconds centred on the
    frame of the change (a box filter over the one-hot track, edges held).
    """
    cats = np.asarray(categories, dtype=np.int64).reshape(-1)
    if cats.size and (cats.min() < 0 or cats.max() >= len(EMOTIONS)):
        raise ValueError(f"emotion category out of range 0..{len(EMOTIONS) - 1}")
    onehot = np.zeros((cats.size, len(EMOTIONS)), dtype=np.float64)
    onehot[np.arange(cats.size), cats] = 1.0
    width = int(round(max(transition_s, 0.0) * fps))
    if width <= 1 or cats.size == 0:
        return onehot.astype(np.float32)
    # Box filter of `width` taps, centred; pad by holding the edge values.
    left = width // 2
    right = width - 1 - left
    padded = np.concatenate([np.repeat(onehot[:1], left, 0), onehot,
                             np.repeat(onehot[-1:], right, 0)])
    csum = np.concatenate([np.zeros((1, onehot.shape[1])), np.cumsum(padded, axis=0)])
    out = (csum[width:] - csum[:-width]) / width
    out /= out.sum(axis=1, keepdims=True)
    return out.astype(np.float32)


def clamp_intensity(values: np.ndarray) -> np.ndarray:
    """Intensity samples clipped to 0..1 (F-curve overshoot must not leave the valid range)."""
    return np.clip(np.asarray(values, dtype=np.float32).reshape(-1), 0.0, 1.0)


def categories_from_samples(samples: np.ndarray) -> np.ndarray:
    """Evaluated enum F-curve values (floats) -> category indices (enum curves hold integers)."""
    return np.clip(np.rint(np.asarray(samples, dtype=np.float64)), 0, len(EMOTIONS) - 1).astype(
        np.int64)


def sample_property(owner, data_path: str, frames: np.ndarray, fallback: float) -> np.ndarray:
    """Evaluate the animation of `owner`'s property at each frame (its value when not animated).

    `owner` is an ID (the scene); the F-curve is looked up in its assigned action (slotted or
    legacy), so the samples follow the keyframes, not today's value.
    """
    from emote_blender import blender_compat

    fcurve = blender_compat.find_fcurve(owner, data_path)
    if fcurve is None:
        return np.full(len(frames), float(fallback), dtype=np.float64)
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def sample_emotion(scene, frames: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (N, 8), intensity (N,)) for the scene's keyframed EMOTE settings at `frames`."""
    settings = scene.emote
    current = EMOTIONS.index(settings.emotion.lower())
    cats = categories_from_samples(sample_property(scene, "emote.emotion", frames, current))
    intensity = clamp_intensity(sample_property(scene, "emote.intensity", frames,
                                                settings.intensity))
    return blend_categories(cats, fps, settings.transition_s), intensity
