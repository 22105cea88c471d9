"""Loss terms of the EMOTE recipe at our scale: vertex error, cosine distances, mouth gap, width."""

from __future__ import annotations

import torch

MM = 1000.0  # metres to millimetres: vertex losses are in mm^2 so their weights read naturally


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of x (B, T, ...) over valid frames of mask (B, T); plain mean when mask is None."""
    if mask is None:
        return x.mean()
    while mask.dim() < x.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.to(x.dtype).expand_as(x)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def vertex_mse(pred: torch.Tensor, ref: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared vertex error in mm^2 for vertices (B, T, V, 3) in metres."""
    err = ((pred - ref) * MM).pow(2).sum(-1).mean(-1)  # (B, T)
    return masked_mean(err, mask)


def cosine_distance(a: torch.Tensor, b: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of 1 - cos(a, b) over the last axis; per frame for (B, T, C) with mask (B, T)."""
    d = 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-6)
    return masked_mean(d, mask) if d.dim() == 2 else d.mean()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against soft targets (rows sum to 1), over the last axis."""
    ce = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
    return masked_mean(ce, mask) if ce.dim() == 2 else ce.mean()


def lip_gap_loss(gap_pred: torch.Tensor, gap_ref: torch.Tensor, mask: torch.Tensor | None = None,
                 closed_mm: float = 1.0, closed_weight: float = 4.0) -> torch.Tensor:
    """L1 error of the inner-lip gap (B, T) in mm, weighted up where the reference lips touch.

    Bilabial closures last two or three frames; a plain vertex MSE averages them away, so this
    term makes the seal itself (what an animator and the closure metric look at) count.
    """
    w = 1.0 + closed_weight * (gap_ref < closed_mm).to(gap_ref.dtype)
    return masked_mean(w * (gap_pred - gap_ref).abs(), mask)


def mouth_width_loss(width_pred: torch.Tensor, width_ref: torch.Tensor,
                     mask: torch.Tensor | None = None, narrow_fraction: float = 0.95,
                     narrow_weight: float = 4.0) -> torch.Tensor:
    """L1 error of the mouth width (B, T) in mm, weighted up where the reference mouth is
    narrower than `narrow_fraction` of its window median: rounding (OO, W) narrows the mouth by
    a few millimetres, which a face-wide vertex MSE averages away."""
    median = width_ref.median(dim=-1, keepdim=True).values
    w = 1.0 + narrow_weight * (width_ref < narrow_fraction * median).to(width_ref.dtype)
    return masked_mean(w * (width_pred - width_ref).abs(), mask)


def channel_l1(pred: torch.Tensor, ref: torch.Tensor, channels: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 error of some expression channels (B, T, E) -> masked mean over those channels.

    Stage 2's upper-face term: brows, lids and cheeks carry the emotion, move a few
    millimetres and are a small share of the face's vertices, so a face-wide vertex MSE lets
    them shrink toward the mean of all emotions (surprised then reads as fear)."""
    return masked_mean((pred.index_select(-1, channels) - ref.index_select(-1, channels)).abs(),
                       mask)
