"""Lip-reading network: mouth-region vertex trajectories -> phone classes per frame.

Trained on the teacher's animations of training utterances under random emotions, then frozen;
its penultimate per-frame features give stage 2's lip-reading loss (1 - cosine), standing in for
EMOTE's lip-reading network on rendered mouth crops.
"""

from __future__ import annotations

import torch
from torch import nn

from .phones import PHONE_CLASSES
from .recipe import SHIPPED


class LipReader(nn.Module):
    """Temporal conv net over mouth offsets (B, T, M, 3) metres -> logits (B, T, classes)."""

    def __init__(self, in_dim: int, hidden: int = 128, classes: int = len(PHONE_CLASSES)):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 5, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(),
        )
        self.out = nn.Conv1d(hidden, classes, 1)

    def features(self, mouth: torch.Tensor) -> torch.Tensor:
        """Penultimate per-frame features (B, T, hidden) (mouth offsets in metres -> cm units)."""
        x = (mouth * 100.0).flatten(-2).transpose(1, 2)
        return self.body(x).transpose(1, 2)

    def forward(self, mouth: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(mouth).transpose(1, 2)).transpose(1, 2)


def train_lip_reader(reader: LipReader, views, sampler, val_sampler, work, steps: int,
                     batch: int = SHIPPED.stages["lip_reader"].batch,
                     lr: float = SHIPPED.stages["lip_reader"].lr, budget_s: float = float("inf"),
                     device: str = "cpu", log=print, **loop_kw):
    """Cross-entropy on per-frame phone classes of teacher animations; returns the StageResult."""
    from .loop import classifier_step_and_val, run_stage
    from .losses import masked_mean

    def batch_loss(b):
        with torch.no_grad():
            mouth = views.mouth(views(b["exp"], b["jaw"]))
        logits = reader(mouth)
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), b["phones"],
                                               reduction="none")
        acc = (logits.argmax(-1) == b["phones"]).float()
        return masked_mean(ce, b["mask"]), masked_mean(acc, b["mask"])

    step, val = classifier_step_and_val(batch_loss, sampler, val_sampler, batch, device)

    return run_stage("lip_reader", work, {"lip_reader": reader}, list(reader.parameters()), step,
                     steps, lr, budget_s, val_fn=val,
                     samplers=(sampler,), log=log, **loop_kw)
