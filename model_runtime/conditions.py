"""Per-frame condition tracks (emotion mixture, intensity, identity) in EMOTE's layout.

numpy only, so Blender's Python can use it too. A condition row is
[emotion 8 | intensity 3 | identity n] one-hots; mixtures and changes over time are allowed
everywhere: emotions are weights that sum to 1 and intensity interpolates between levels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import EmoteInputError
from .emotions import EMOTIONS, INTENSITY_LEVELS  # noqa: F401 (re-exported)

# Other spellings of the same emotions (MEAD / paper wording) accepted on input.
EMOTION_ALIASES = {
    "surprise": "surprised", "fearful": "fear", "afraid": "fear", "disgust": "disgusted",
    "anger": "angry", "contemptuous": "contempt", "happiness": "happy", "sadness": "sad",
}


def emotion_index(name: str) -> int:
    """EMOTE index of an emotion name (case-insensitive, a few aliases); bad_request if unknown."""
    key = str(name).strip().lower()
    key = EMOTION_ALIASES.get(key, key)
    if key not in EMOTIONS:
        raise EmoteInputError(
            "bad_request",
            f"Unknown emotion {name!r}. Valid emotions are: {', '.join(EMOTIONS)}.",
        )
    return EMOTIONS.index(key)


def intensity_one_hot(values) -> np.ndarray:
    """Map intensities in 0..1 to (N, 3) level weights: 0 -> level 1, 0.5 -> 2, 1 -> 3, linear
    in between (values outside 0..1 are clipped)."""
    v = np.clip(np.atleast_1d(np.asarray(values, dtype=np.float64)), 0.0, 1.0) * 2.0
    out = np.stack([np.maximum(0.0, 1.0 - v), 1.0 - np.abs(v - 1.0), np.maximum(0.0, v - 1.0)],
                   axis=-1)
    return out.astype(np.float32)


def resample_track(track, src_fps: float, dst_fps: float, n_dst: int) -> np.ndarray:
    """Linearly resample a per-frame track: row k of the source is at time k/src_fps, row n of the
    result at n/dst_fps; values hold beyond either end. Accepts (N,) or (N, C)."""
    arr = np.asarray(track, dtype=np.float64)
    squeeze = arr.ndim == 1
    if squeeze:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"resample_track needs a non-empty (N,) or (N, C) track, got {arr.shape}")
    if not (src_fps > 0 and dst_fps > 0) or n_dst < 0:
        raise ValueError("resample_track needs positive frame rates and n_dst >= 0")
    pos = np.arange(int(n_dst), dtype=np.float64) * (float(src_fps) / float(dst_fps))
    pos = np.clip(pos, 0.0, arr.shape[0] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, arr.shape[0] - 1)
    frac = (pos - lo)[:, None]
    out = arr[lo] * (1.0 - frac) + arr[hi] * frac
    return out[:, 0] if squeeze else out


def build_condition_track(
    emotion_names: Sequence[str],
    emotion_weights,
    intensity,
    src_fps: float,
    model_fps: float,
    n_model_frames: int,
    identity_index: int,
    n_identities: int,
) -> np.ndarray:
    """(n_model_frames, 8 + 3 + n_identities) float32 condition rows at the model's frame rate.

    `emotion_weights` is (N, len(emotion_names)) and `intensity` (N,) at `src_fps` (N = 1 means
    constant); each weight row is renormalised to sum 1 and mapped onto EMOTE's emotion order.
    """
    weights = emotion_matrix(emotion_names, emotion_weights)
    try:
        inten = np.asarray(intensity, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EmoteInputError("bad_request", "Intensity must be a list of numbers in 0..1, one "
                              "per frame.") from exc
    if inten.size == 0:
        raise EmoteInputError("bad_request", "The intensity track is empty; give one value per "
                              "frame (0 = weakest, 1 = strongest).")
    if not np.isfinite(inten).all() or inten.min() < -1e-6 or inten.max() > 1 + 1e-6:
        raise EmoteInputError("bad_request", "Intensity values must lie between 0 and 1; "
                              "check the intensity curve.")
    if not 0 <= int(identity_index) < int(n_identities):
        raise EmoteInputError(
            "bad_request",
            f"Speaking style number {identity_index} does not exist; this model has "
            f"{n_identities} styles (0..{n_identities - 1}).",
        )
    n = int(n_model_frames)
    emo = resample_track(weights, src_fps, model_fps, n)
    emo /= emo.sum(axis=1, keepdims=True)
    level = intensity_one_hot(resample_track(inten, src_fps, model_fps, n))
    ident = np.zeros((n, int(n_identities)), dtype=np.float32)
    ident[:, int(identity_index)] = 1.0
    return np.concatenate([emo.astype(np.float32), level, ident], axis=1)


def emotion_matrix(emotion_names: Sequence[str], emotion_weights) -> np.ndarray:
    """(N, 8) float64 weights in EMOTE order from named columns; rows renormalised to sum 1."""
    names = [emotion_names] if isinstance(emotion_names, str) else list(emotion_names)
    if not names:
        raise EmoteInputError("bad_request", "No emotion names given; name at least one of: "
                              f"{', '.join(EMOTIONS)}.")
    cols = [emotion_index(name) for name in names]
    try:
        w = np.asarray(emotion_weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EmoteInputError("bad_request", "Emotion weights must be a table of numbers, one row "
                              "per frame and one column per emotion name.") from exc
    if w.ndim == 1 and len(names) == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[1] != len(names) or w.shape[0] == 0:
        raise EmoteInputError(
            "bad_request",
            f"Emotion weights must have one row per frame and {len(names)} column(s) (one per "
            f"name in {names}); got shape {tuple(w.shape)}.",
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise EmoteInputError("bad_request", "Emotion weights must be finite and not negative.")
    sums = w.sum(axis=1)
    if (sums <= 0).any():
        row = int(np.argmax(sums <= 0))
        raise EmoteInputError("bad_request", f"The emotion weights of frame {row} are all zero; "
                              "give every frame some weight (for example neutral = 1).")
    out = np.zeros((w.shape[0], len(EMOTIONS)), dtype=np.float64)
    for j, col in enumerate(cols):
        out[:, col] += w[:, j]
    return out / sums[:, None]


def identity_index(identity: str | None, identities: Sequence[str]) -> int:
    """Index of a speaking style name in a checkpoint's identity list (None or "" -> 0)."""
    identities = list(identities)
    if not identities:
        raise EmoteInputError("bad_checkpoint", "The model lists no speaking styles (identities);"
                              " it is damaged or was saved incompletely.")
    if identity is None or identity == "":
        return 0
    if identity in identities:
        return identities.index(identity)
    raise EmoteInputError(
        "bad_request",
        f"Unknown speaking style {identity!r}. This model offers: {', '.join(identities)}.",
    )
