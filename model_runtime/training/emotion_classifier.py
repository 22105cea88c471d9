"""Sequence-level emotion classifier on face vertex trajectories (8 EMOTE emotions).

Trained on teacher sequences with random emotions at random intensities, then frozen; its pooled
penultimate features give stage 2's emotion loss (1 - cosine).
"""

from __future__ import annotations

import torch
from torch import nn

from ..emotions import N_EMOTIONS
from .recipe import SHIPPED



class EmotionClassifier(nn.Module):
    """Face offsets (B, T, V, 3) metres (+ mask (B, T)) -> emotion logits (B, 8)."""

    def __init__(self, in_dim: int, hidden: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 5, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.GELU(),
        )
        self.pooled = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU())
        self.out = nn.Linear(hidden, N_EMOTIONS)

    def features(self, face: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled sequence features (B, hidden): masked mean and max over time, then an MLP."""
        x = self.body((face * 100.0).flatten(-2).transpose(1, 2)).transpose(1, 2)  # (B, T, H)
        if mask is None:
            mask = torch.ones(x.shape[:2], device=x.device, dtype=x.dtype)
        m = mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        mx = x.masked_fill(m == 0, -1e4).amax(1)
        return self.pooled(torch.cat([mean, mx], -1))

    def forward(self, face: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.features(face, mask))


def train_emotion_classifier(clf: EmotionClassifier, views, sampler, val_sampler, work,
                             steps: int, batch: int = SHIPPED.stages["emotion_classifier"].batch,
                             lr: float = SHIPPED.stages["emotion_classifier"].lr,
                             budget_s: float = float("inf"), device: str = "cpu", log=print,
                             **loop_kw):
    """Soft cross-entropy against each window's mean emotion weights; returns the StageResult."""
    from .loop import classifier_step_and_val, run_stage
    from .losses import soft_cross_entropy

    def batch_loss(b):
        with torch.no_grad():
            face = views.emotion(views(b["exp"], b["jaw"]))
        logits = clf(face, b["mask"])
        target = b["emotion_mean"]
        acc = (logits.argmax(-1) == target.argmax(-1)).float().mean()
        return soft_cross_entropy(logits, target), acc

    step, val = classifier_step_and_val(batch_loss, sampler, val_sampler, batch, device)

    return run_stage("emotion_classifier", work, {"emotion_classifier": clf},
                     list(clf.parameters()), step, steps, lr, budget_s,
                     val_fn=val, samplers=(sampler,), log=log, **loop_kw)
