"""The head's vertices that the losses look at: face region, mouth region, emotion region."""

from __future__ import annotations

import numpy as np
import torch

from ..heads.head_model import REQUIRED_LANDMARKS, HeadModel
from ..heads.head_model_torch import TorchHead
from .vertex_regions import face_subset, mouth_subset, positions


class HeadViews(torch.nn.Module):
    """Evaluates only the vertices the losses need and cuts them into named regions.

    `forward(exp, jaw)` gives (..., V_sub, 3) in metres; `face/mouth/emotion(v)` select regions
    (mouth and emotion as offsets from rest, the inputs of the lip reader and emotion classifier).
    """

    def __init__(self, head: HeadModel, face_max: int = 1200, mouth_count: int = 64,
                 emotion_count: int = 300):
        super().__init__()
        face = face_subset(head, face_max, seed=0)
        mouth = mouth_subset(head, mouth_count)
        emo = face_subset(head, emotion_count, seed=1)
        lips = np.array([head.landmark(n) for n in REQUIRED_LANDMARKS])
        subset = np.unique(np.concatenate([face, mouth, emo, lips]))
        self.head = TorchHead(head, vertex_subset=subset)
        self.register_buffer("rest", torch.as_tensor(head.v_template[subset], dtype=torch.float32))
        for name, idx in (("face", face), ("mouth", mouth), ("emo", emo), ("lips", lips)):
            self.register_buffer(f"i_{name}", torch.as_tensor(positions(subset, idx)))
        self.mouth_dim = 3 * len(mouth)
        self.emotion_dim = 3 * len(emo)

    def forward(self, exp: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        return self.head(exp, jaw)

    def face(self, v: torch.Tensor) -> torch.Tensor:
        return v.index_select(-2, self.i_face)

    def mouth(self, v: torch.Tensor) -> torch.Tensor:
        return (v - self.rest).index_select(-2, self.i_mouth)

    def emotion(self, v: torch.Tensor) -> torch.Tensor:
        return (v - self.rest).index_select(-2, self.i_emo)

    def _landmark_distance_mm(self, v: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """Distance (...,) in mm between two of the REQUIRED_LANDMARKS, by their position there."""
        lips = v.index_select(-2, self.i_lips)
        return (lips[..., a, :] - lips[..., b, :]).norm(dim=-1) * 1000.0

    def lip_gap_mm(self, v: torch.Tensor) -> torch.Tensor:
        """Inner lip gap (...,) in mm (landmarks lip_upper_inner, lip_lower_inner)."""
        return self._landmark_distance_mm(v, 0, 1)

    def mouth_width_mm(self, v: torch.Tensor) -> torch.Tensor:
        """Mouth width (...,) in mm (landmarks mouth_corner_left, mouth_corner_right)."""
        return self._landmark_distance_mm(v, 2, 3)
