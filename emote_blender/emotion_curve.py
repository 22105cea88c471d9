"""Turn the keyframed emotion category and intensity into the per-frame tracks a request needs.

The animator keyframes a head's `emotion` (an enum) and `intensity` like any property (they live
on the head object, `obj.emote`), in the active action, in NLA strips or through drivers; we take their values once per scene frame over the strip as
Blender's animation system gives them, then blend category changes into mixture weights.
"""

from __future__ import annotations

import numpy as np

from ..model_runtime.emotions import EMOTIONS  # standard library only

# EMOTE order (DESIGN.md): the index of each name is its category value in the enum property.


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
    from . import blender_compat

    fcurve = blender_compat.find_fcurve(owner, data_path)
    if fcurve is None:
        return np.full(len(frames), float(fallback), dtype=np.float64)
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def _strip_animates(strip, data_paths) -> bool:
    from . import blender_compat

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


def _strip_fcurve(strip, data_path: str):
    from . import blender_compat

    slot = getattr(strip, "action_slot", None) if blender_compat.SLOTTED else None
    return next((fc for fc in blender_compat.action_fcurves(strip.action, slot)
                 if fc.data_path == data_path and fc.array_index == 0), None)


def _plain_strip(strip) -> bool:
    """An action strip that maps time 1:1 and replaces at full influence."""
    return (strip.type == "CLIP" and strip.action is not None and strip.blend_type == "REPLACE"
            and not strip.use_animated_influence and not strip.use_animated_time
            and not strip.use_auto_blend and strip.blend_in == 0 and strip.blend_out == 0
            and strip.repeat == 1 and strip.scale == 1 and not strip.use_reverse)
    # (`influence` only counts when animated; otherwise a strip plays at 100%)


def _track_sample(strips: list, f: float):
    """(strip, action time) that a track plays at frame `f`, or None (Blender's NLA rules: the
    first strip containing f; before the first strip only when it holds; between and after
    strips the previous one when it holds, or holds forward)."""
    for i, st in enumerate(strips):
        if st.frame_start <= f <= st.frame_end:
            return st, st.action_frame_start + (f - st.frame_start)
        if f < st.frame_start:
            if i == 0:
                return (st, st.action_frame_start) if st.extrapolation == "HOLD" else None
            prev = strips[i - 1]
            return None if prev.extrapolation == "NOTHING" else (prev, prev.action_frame_end)
    last = strips[-1] if strips else None
    if last is None or last.extrapolation == "NOTHING":
        return None
    return last, last.action_frame_end


def nla_samples(owner, data_path: str, frames: np.ndarray) -> np.ndarray | None:
    """The property at each frame through the NLA stack and the active action, computed from the
    F-curves without touching the scene; None when the stack holds anything this does not
    reproduce exactly (drivers, blending, scaled or repeated strips, solo tracks, frames where
    nothing sets the property), so the caller steps the scene instead."""
    ad = owner.animation_data
    if ad is None or ad.use_tweak_mode or any(d.data_path == data_path for d in ad.drivers):
        return None
    layers = []  # bottom track first; each a list of (frame -> (strip, time) | None) sources
    if ad.use_nla:
        for track in ad.nla_tracks:
            if track.is_solo:
                return None
            if track.mute:
                continue
            strips = [st for st in track.strips if not st.mute]
            if any(st.type != "CLIP" for st in strips):
                return None  # meta strips and transitions: left to Blender
            if not any(st.action is not None and _strip_fcurve(st, data_path) for st in strips):
                continue  # sets nothing of ours
            if not all(_plain_strip(st) for st in strips):
                return None
            layers.append(sorted(strips, key=lambda st: st.frame_start))
    from . import blender_compat

    top = blender_compat.find_fcurve(owner, data_path) if ad.action is not None else None
    if top is not None and (ad.action_influence != 1.0 or ad.action_blend_type != "REPLACE"):
        return None
    out = np.empty(len(frames), dtype=np.float64)
    for k, f in enumerate(np.asarray(frames, dtype=np.float64)):
        if top is not None:
            out[k] = top.evaluate(float(f))
            continue
        for strips in reversed(layers):  # the highest track that plays wins (Replace, 100%)
            hit = _track_sample(strips, float(f))
            if hit is not None:
                fc = _strip_fcurve(hit[0], data_path)
                if fc is not None:
                    out[k] = fc.evaluate(float(hit[1]))
                    break
        else:
            return None
    return out


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


def sample_emotion(scene, frames: np.ndarray, fps: float,
                   owner=None) -> tuple[np.ndarray, np.ndarray]:
    """(weights (N, 8), intensity (N,)) of a character's animated EMOTE settings at `frames`.

    `owner` is the head object whose `emote` settings hold the curve (default: the scene's
    head). Read from the F-curves without touching the scene when they come from the active
    action or from plain NLA strips; when drivers, blending or time-warped strips are involved,
    the scene is stepped through the frames so the values are exactly those Blender shows.
    """
    owner = owner if owner is not None else scene.emote.head
    settings = owner.emote
    now = {"emote.emotion": EMOTIONS.index(settings.emotion.lower()),
           "emote.intensity": settings.intensity}
    samples = []
    for path in EMOTION_PATHS:
        if needs_evaluation(owner, (path,)):
            samples.append(nla_samples(owner, path, frames))
        else:
            samples.append(sample_property(owner, path, frames, now[path]))
    if any(v is None for v in samples):
        vals = evaluate_per_frame(scene, frames, lambda _sc: (
            EMOTIONS.index(owner.emote.emotion.lower()), owner.emote.intensity))
        samples = [vals[:, 0], vals[:, 1]]
    cats, intensity = categories_from_samples(samples[0]), clamp_intensity(samples[1])
    return blend_categories(cats, fps, settings.transition_s), intensity
