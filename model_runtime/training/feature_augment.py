"""Speaker and channel variety drawn afresh for every training batch, on the cached log-mel.

The cache holds one augmented rendering of each clip (augment.robust_augment), so stage 2 sees
the same 20-odd voices in the same few guises for thousands of steps and starts to learn them.
These cheap transforms of the log-mel features (B, F, n_mels) give every batch new ones:

- vocal-tract warp: formants move by a factor (f -> a f, mapped through the mel scale), as a
  shorter or longer vocal tract moves them;
- spectral tilt: a straight line across the bands in log power (brighter or duller microphone,
  a voice's own slope);
- frequency masks: a few bands replaced by the frame's mean, so no single band carries a cue
  (SpecAugment's frequency masking).

Time is never masked or warped: the targets are frame-exact and a masked bilabial would teach
the model to guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..networks.audio_encoders import hz_to_mel, mel_to_hz


@dataclass(frozen=True)
class FeatureAugment:
    """How strong each transform is; each is applied to a sample with probability `p`."""
    warp: tuple[float, float] = (0.88, 1.14)  # formant factor range (augment.VTL_RANGE)
    tilt: float = 1.5  # max |slope| in natural-log power from the lowest band to the highest
    masks: int = 2  # frequency masks per sample
    mask_bands: int = 8  # each at most this many bands wide
    p: float = 0.5
    fmin: float = 0.0  # the log-mel's band edges (the encoder's fmin and fmax)
    fmax: float = 8000.0


def warp_positions(n_mels: int, factor: float, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """(n_mels,) fractional band index to read for each band after warping formants by `factor`:
    band j (centre c_j Hz) takes the value of the old spectrum at c_j / factor."""
    edges = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    centres = edges[1:-1]
    src = hz_to_mel(mel_to_hz(centres) / factor)
    pos = (src - centres[0]) / (centres[1] - centres[0])
    return np.clip(pos, 0.0, n_mels - 1.0)


def _interp_bands(x: torch.Tensor, pos: np.ndarray) -> torch.Tensor:
    """x (F, n_mels) read at fractional band positions pos (n_mels,), linearly."""
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[-1] - 1)
    frac = torch.as_tensor(pos - lo, dtype=x.dtype, device=x.device)
    return x[:, lo] * (1 - frac) + x[:, hi] * frac


def augment_features(feat: torch.Tensor, rng: np.random.Generator,
                     cfg: FeatureAugment = FeatureAugment()) -> torch.Tensor:
    """A new batch (B, F, n_mels) with each sample independently warped, tilted and masked."""
    out = feat.clone()
    B, _, n = feat.shape
    ramp = torch.linspace(-0.5, 0.5, n, dtype=feat.dtype, device=feat.device)
    for b in range(B):
        x = out[b]
        if rng.random() < cfg.p:
            f = float(rng.uniform(*cfg.warp))
            x = _interp_bands(x, warp_positions(n, f, cfg.fmin, cfg.fmax))
        if rng.random() < cfg.p:
            x = x + float(rng.uniform(-cfg.tilt, cfg.tilt)) * ramp
        if rng.random() < cfg.p:
            fill = x.mean(dim=1, keepdim=True)
            for _ in range(cfg.masks):
                w = int(rng.integers(0, cfg.mask_bands + 1))
                if w:
                    s = int(rng.integers(0, n - w + 1))
                    x[:, s:s + w] = fill  # x is out's row or a new tensor: feat is untouched
        out[b] = x
    return out


__all__ = ["FeatureAugment", "augment_features", "warp_positions"]
