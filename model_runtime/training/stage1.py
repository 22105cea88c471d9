"""Stage 1: the talking head (log-mel encoder) with a vertex loss, FLINT decoder frozen."""

from __future__ import annotations

import torch

from .loop import run_stage
from .losses import lip_gap_loss, mouth_width_loss, vertex_mse
from .recipe import SHIPPED
from .validation import lip_sync_proxy


def trainable(model) -> list:
    """Parameters outside the frozen FLINT decoder (whose BatchNorms stay in eval mode)."""
    for p in model.flint.parameters():
        p.requires_grad_(False)
    model.flint.freeze_batchnorm(True)
    return [p for n, p in model.named_parameters() if not n.startswith("flint.")]


def predict_vertices(model, views, b: dict, cond: torch.Tensor | None = None):
    """Run the head on a batch's cached features and condition; vertices (B, T, V_sub, 3)."""
    out = model.forward_features(b["feat"], b["cond"] if cond is None else cond)
    E = out.shape[-1] - 3
    return views(out[..., :E], out[..., E:])


def train_stage1(model, views, sampler, val_sampler, work, steps: int,
                 batch: int = SHIPPED.stages["stage1"].batch,
                 lr: float = SHIPPED.stages["stage1"].lr, budget_s: float = float("inf"),
                 device: str = "cpu", name: str = "stage1",
                 gap_weight: float = SHIPPED.stage1_gap_weight,
                 width_weight: float = SHIPPED.stage1_width_weight,
                 log=print, **loop_kw):
    """Vertex MSE (mm^2, face region) plus the lip-gap (L1, mm) and mouth-width terms against
    the teacher; val: loss and the lip-sync proxy."""
    params = trainable(model)

    def batch_loss(b):
        pred = predict_vertices(model, views, b)
        with torch.no_grad():
            ref = views(b["exp"], b["jaw"])
        loss = vertex_mse(views.face(pred), views.face(ref), b["mask"])
        if gap_weight:
            loss = loss + gap_weight * lip_gap_loss(views.lip_gap_mm(pred), views.lip_gap_mm(ref),
                                                    b["mask"])
        if width_weight:
            loss = loss + width_weight * mouth_width_loss(views.mouth_width_mm(pred),
                                                          views.mouth_width_mm(ref), b["mask"])
        return loss

    def step(_):
        loss = batch_loss(sampler.sample(batch, device))
        return loss, {"vertex_mm2": loss.item()}

    def val():
        out = {"vertex_mm2": float(sum(batch_loss(val_sampler.sample(batch, device))
                                       for _ in range(4)) / 4)}
        out.update(lip_sync_proxy(model, views, val_sampler.c, val_sampler.idx, device))
        return out

    return run_stage(name, work, {"model": model}, params, step, steps, lr, budget_s,
                     val_fn=val if val_sampler else None, samplers=(sampler,), log=log, **loop_kw)
