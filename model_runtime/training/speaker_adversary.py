"""A speaker adversary for stage 2: it learns to tell the training voices apart from the audio
encoder's frames, and a gradient-reversal layer makes the encoder unlearn what it uses.

The shipped model closed the lips for 0.94 of the bilabials of the game voices it trained on and
0.78 of those of voices it never heard: what the encoder keeps of a voice is what fails to
transfer. Domain-adversarial training (Ganin and Lempitsky, 2015) removes it: the adversary
minimises its cross-entropy, the reversed gradient makes the encoder maximise it. Training only;
nothing of it is saved into the shipped checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Reverse(torch.autograd.Function):
    """Identity forward; the gradient times -scale backward."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """x unchanged, with its gradient multiplied by -scale on the way back."""
    return _Reverse.apply(x, float(scale))


class SpeakerAdversary(nn.Module):
    """Encoder frames (B, T, feature_dim) -> voice logits (B, T, n_voices), through a gradient
    reversal, so that minimising `loss` trains the adversary and pushes the encoder the other
    way."""

    def __init__(self, feature_dim: int, n_voices: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_voices))

    def forward(self, encoded: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.net(reverse_gradient(encoded, scale))

    def loss(self, encoded: torch.Tensor, voice: torch.Tensor, mask: torch.Tensor,
             scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked frame cross-entropy of the voice ids voice (B,) and the adversary's frame
        accuracy (how much of the voice the encoder still gives away)."""
        logits = self(encoded, scale)
        target = voice[:, None].expand(logits.shape[:2])
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        m = mask.to(ce.dtype)
        denom = m.sum().clamp_min(1.0)
        acc = ((logits.argmax(-1) == target).to(ce.dtype) * m).sum() / denom
        return (ce * m).sum() / denom, acc


__all__ = ["SpeakerAdversary", "reverse_gradient"]
