"""Turn the keyframed emotion category and intensity into the per-frame tracks a request needs.

The animator keyframes `emotion` (an enum) and `intensity` like any property, in the active action,
in NLA strips or through drivers; we take their values once per scene frame over the strip as
Blender's animation system gives them, then blend category changes into mixture weights.
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


EMOTION_PATHS: tuple[str, ...] = ("emote.emotion", "emote.intensity")


def sample_property(owner, data_path: str, frames: np.ndarray, fallback: float) -> np.ndarray:
    """The active action's F-curve for `owner`'s property at each frame (`fallback` when there is
    none). Right only when nothing else animates the property (see `needs_evaluation`)."""
    from emote_blender import blender_compat

    fcurve = blender_compat.find_fcurve(owner, data_path)
    if fcurve is None:
        return np.full(len(frames), float(fallback), dtype=np.float64)
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def _strip_animates(strip, data_paths) -> bool:
    from emote_blender import blender_compat

    if strip.mute:
        return False
    if strip.type == "META":
        return any(_strip_animates(s, data_paths) for s in strip.strips)
    if strip.action is None:
        return False
    slot = getattr(strip, "action_slot", None) if blender_compat.SLOTTED else None
    return any(fc.data_path in data_paths
               for fc in blender_compat.action_fcurves(strip.action, slot))


def needs_evaluation(owner, data_paths=EMOTION_PATHS) -> bool:
    """Whether anything besides one plain active-action F-curve sets these properties: a driver,
    an unmuted NLA strip that animates them, or an active action blended in (influence below 1,
    a blend mode other than Replace, NLA tweak mode)."""
    ad = getattr(owner, "animation_data", None)
    if ad is None:
        return False
    if any(d.data_path in data_paths and not d.mute for d in ad.drivers):
        return True
    if ad.use_tweak_mode:
        return True
    if ad.action is not None and (ad.action_influence < 1.0 or ad.action_blend_type != "REPLACE"):
        return True
    return ad.use_nla and any(
        not track.mute and any(_strip_animates(s, data_paths) for s in track.strips)
        for track in ad.nla_tracks)


def evaluate_per_frame(scene, frames: np.ndarray, read) -> np.ndarray:
    """`read(scene)` (a tuple of floats) at each frame as Blender evaluates it (actions, NLA,
    drivers), by stepping the scene through the frames; the current frame is restored after."""
    frame, subframe = scene.frame_current, scene.frame_subframe
    rows = []
    try:
        for f in np.asarray(frames, dtype=np.float64):
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            rows.append(read(scene))
    finally:
        scene.frame_set(frame, subframe=subframe)
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def sample_emotion(scene, frames: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (N, 8), intensity (N,)) for the scene's animated EMOTE settings at `frames`.

    Plain keyframes in the active action are read from their F-curves (fast, nothing changes in
    the scene); when NLA strips, drivers or action blending are involved, the scene is stepped
    through the frames so the values are exactly those Blender shows.
    """
    settings = scene.emote
    if needs_evaluation(scene):
        vals = evaluate_per_frame(scene, frames, lambda sc: (
            EMOTIONS.index(sc.emote.emotion.lower()), sc.emote.intensity))
        cats, intensity = categories_from_samples(vals[:, 0]), clamp_intensity(vals[:, 1])
    else:
        current = EMOTIONS.index(settings.emotion.lower())
        cats = categories_from_samples(sample_property(scene, "emote.emotion", frames, current))
        intensity = clamp_intensity(sample_property(scene, "emote.intensity", frames,
                                                    settings.intensity))
    return blend_categories(cats, fps, settings.transition_s), intensity
