"""FLINT motion prior training: a temporal VAE on teacher sequences (vertex MSE + KL)."""

from __future__ import annotations

import torch

from ..networks.flint import FlintVAE
from .loop import run_stage
from .losses import vertex_mse
from .recipe import SHIPPED


def train_flint(vae: FlintVAE, views, sampler, val_sampler, work, steps: int,
                batch: int = SHIPPED.stages["flint"].batch, lr: float = SHIPPED.stages["flint"].lr,
                kl_weight: float = SHIPPED.flint_kl_weight, budget_s: float = float("inf"),
                device: str = "cpu", log=print, **loop_kw):
    """Reconstruct 32-frame windows of teacher motion [exp | jaw]; loss in mm^2 plus weighted KL.

    The sampler's window must be a multiple of the FLINT down-sampling (8).
    """
    def batch_loss(b, sample: bool):
        motion = torch.cat([b["exp"], b["jaw"]], -1)
        mean, logvar = vae.motion_encoder(motion)
        z = vae.reparameterise(mean, logvar, sample)
        recon = vae.motion_decoder(z)
        E = b["exp"].shape[-1]
        with torch.no_grad():
            ref = views.face(views(b["exp"], b["jaw"]))
        pred = views.face(views(recon[..., :E], recon[..., E:]))
        return vertex_mse(pred, ref, b["mask"]), vae.kl_loss(mean, logvar)

    def step(_):
        rec, kl = batch_loss(sampler.sample(batch, device), True)
        return rec + kl_weight * kl, {"vertex_mm2": rec.item(), "kl": kl.item()}

    def val():
        vals = [batch_loss(val_sampler.sample(batch, device), False)[0] for _ in range(4)]
        return {"vertex_mm2": float(sum(vals) / 4)}

    return run_stage("flint", work, {"flint": vae}, list(vae.parameters()), step, steps, lr,
                     budget_s, val_fn=val if val_sampler else None, samplers=(sampler,),
                     log=log, **loop_kw)
