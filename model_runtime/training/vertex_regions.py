"""Vertex subsets of a head used by the training losses (moving face, mouth region)."""

from __future__ import annotations

import numpy as np

from ..heads.head_model import REQUIRED_LANDMARKS, HeadModel


def _motion(head: HeadModel) -> np.ndarray:
    """How far each vertex can move: largest expression direction plus its jaw skinning weight."""
    exp = np.linalg.norm(head.exp_dirs, axis=1).max(axis=1) if head.exp_dirs.size else 0.0
    return exp + 0.01 * head.lbs_weights[:, head.jaw_index]


def face_subset(head: HeadModel, max_vertices: int = 1200, seed: int = 0) -> np.ndarray:
    """Sorted indices of moving vertices (at most max_vertices), always with the lip landmarks."""
    moving = np.nonzero(_motion(head) > 1e-5)[0]
    if len(moving) > max_vertices:
        moving = np.sort(np.random.default_rng(seed).choice(moving, max_vertices, replace=False))
    lm = [head.landmark(n) for n in REQUIRED_LANDMARKS]
    return np.unique(np.concatenate([moving, lm])).astype(np.int64)


def mouth_subset(head: HeadModel, count: int = 64) -> np.ndarray:
    """The lip landmarks plus the moving vertices nearest the mouth centre (count in total)."""
    lm = np.array([head.landmark(n) for n in REQUIRED_LANDMARKS])
    centre = head.v_template[lm].mean(0)
    moving = np.nonzero(_motion(head) > 1e-5)[0]
    d = np.linalg.norm(head.v_template[moving] - centre, axis=1)
    near = moving[np.argsort(d)[: max(count - len(lm), 0)]]
    return np.unique(np.concatenate([lm, near])).astype(np.int64)


def positions(subset: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Position of each vertex index of `vertices` inside `subset` (both sorted index arrays)."""
    pos = np.searchsorted(subset, vertices)
    if np.any(pos >= len(subset)) or np.any(subset[np.minimum(pos, len(subset) - 1)] != vertices):
        raise ValueError("vertices are not all inside the subset")
    return pos
