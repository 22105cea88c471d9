"""Random training windows from the cache, as torch tensors ready for the stages."""

from __future__ import annotations

import numpy as np
import torch

from .feature_cache import Cache


def intensity_one_hot(values: np.ndarray) -> np.ndarray:
    """(N,) intensities in 0..1 to (N, 3) level one-hots (uses model_runtime.conditions)."""
    try:
        from ..conditions import intensity_one_hot as _one_hot
        return np.asarray(_one_hot(values), np.float32)
    except ImportError:  # pragma: no cover - only while conditions.py is being written
        lv = np.clip(np.floor(np.asarray(values) * 3), 0, 2).astype(int)
        return np.eye(3, dtype=np.float32)[lv]


def condition_rows(emotion: np.ndarray, intensity: np.ndarray, style: int,
                   n_ids: int) -> np.ndarray:
    """Condition track (T, 8 + 3 + n_ids): [emotion | intensity one-hot | identity one-hot]."""
    T = emotion.shape[0]
    ident = np.zeros((T, n_ids), np.float32)
    ident[:, style] = 1.0
    return np.concatenate([emotion.astype(np.float32), intensity_one_hot(intensity), ident], 1)


def voice_ids(voices: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) int ids of the cache's voices and the names they index, sorted ("" is one voice)."""
    names, ids = np.unique(np.asarray(voices).astype(str), return_inverse=True)
    return ids.astype(np.int64), names.tolist()


def speaker_balanced(frames: np.ndarray, voices: np.ndarray | None, power: float) -> np.ndarray:
    """Draw weights (N,): an utterance's frames over its voice's total frames ** power.

    power 0 draws frames uniformly (a voice with most of the speech dominates, as the game's
    protagonist does), 1 gives every voice the same share, 0.5 sits between. Utterances of
    unknown voice ("") count as one voice each.
    """
    frames = np.asarray(frames, np.float64)
    if power == 0 or voices is None:
        return frames
    keys = np.array([v if v else f"#{i}" for i, v in enumerate(voices)])
    _, inv = np.unique(keys, return_inverse=True)
    total = np.bincount(inv, weights=frames)
    return frames / total[inv] ** float(power)


class WindowSampler:
    """Draws batches of `window`-frame windows (padded and masked when an utterance is shorter)."""

    def __init__(self, cache: Cache, indices: np.ndarray, window: int = 64, seed: int = 0,
                 speaker_balance: float = 0.0):
        if len(indices) == 0:
            raise ValueError("no utterances to sample from (empty split?)")
        self.c, self.idx, self.W = cache, np.asarray(indices), int(window)
        self.rng = np.random.default_rng(seed)
        frames = cache.frames[self.idx].astype(np.float64)
        voices = cache.voice[self.idx] if cache.voice is not None else None
        w = speaker_balanced(frames, voices, speaker_balance)
        self.p = w / w.sum()
        self.voice_id, self.voice_names = voice_ids(
            cache.voice if cache.voice is not None else np.full(len(cache.frames), ""))
        self.n_ids = len(cache.meta["styles"])

    def sample(self, batch: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """One batch: feat, cond, exp, jaw, phones, mask, emotion_mean, intensity_mean, style,
        voice (index into `voice_names`)."""
        picks = self.rng.choice(self.idx, size=batch, p=self.p)
        ks = self.rng.integers(self.c.variants, size=batch)
        rows = [self.window(int(n), int(k)) for n, k in zip(picks, ks)]
        out = {key: torch.from_numpy(np.stack([r[key] for r in rows])) for key in rows[0]}
        return {k: v.to(device) for k, v in out.items()}

    def window(self, n: int, k: int, start: int | None = None) -> dict[str, np.ndarray]:
        """Window of utterance n, variant k, from `start` (random when None)."""
        c, W, r = self.c, self.W, self.c.ratio
        T = int(c.frames[n])
        if start is None:
            start = int(self.rng.integers(0, max(T - W, 0) + 1))
        o = int(c.frame_offsets[n]) + start
        L = min(W, T - start)
        take = np.arange(L)
        pad = np.full(W - L, L - 1)
        sel = o + np.concatenate([take, pad]).astype(np.int64)
        rows = np.minimum(r * start + np.arange(r * W + 1), r * T)  # edge-pad past the end
        fsel = c.feat_offset(n) + rows
        emo = c.emotion[k, sel].astype(np.float32)
        inten = c.intensity[k, sel].astype(np.float32)
        mask = (np.arange(W) < L).astype(np.float32)
        return {
            "feat": c.feat[fsel].astype(np.float32),
            "cond": condition_rows(emo, inten, int(c.style[k, n]), self.n_ids),
            "exp": c.exp[k, sel].astype(np.float32),
            "jaw": c.jaw[k, sel].astype(np.float32),
            "phones": c.phone_frames[sel].astype(np.int64),
            "mask": mask,
            "emotion_mean": emo[:L].mean(0),
            "intensity_mean": np.float32(inten[:L].mean()),
            "style": np.int64(c.style[k, n]),
            "voice": self.voice_id[n],
        }
