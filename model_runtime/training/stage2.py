"""Stage 2: vertex + lip-reading + emotion losses with EMOTE's content-emotion exchange.

Each batch is duplicated; the copy gets the emotion and intensity of another sequence of the
batch (same audio, same identity). The vertex loss sees only the original half; the copy's
lip-reading features must match the original reference's (content kept under another emotion),
and its emotion features must match those of the sequence whose condition it borrowed. The
original half also gets both perceptual losses against its own reference. The FLINT decoder
stays frozen (BatchNorm in eval mode) as the output layer.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..emotions import INTENSITY_LEVELS, N_EMOTIONS
from .feature_augment import FeatureAugment, augment_features
from .loop import run_stage
from .recipe import SHIPPED
from .losses import (channel_l1, cosine_distance, lip_gap_loss, mouth_width_loss,
                     vertex_mse)
from .speaker_adversary import SpeakerAdversary
from .stage1 import trainable
from .validation import lip_sync_proxy

EMOTION_AND_INTENSITY = N_EMOTIONS + INTENSITY_LEVELS  # leading condition columns the exchange swaps


def _open_head_channels(n_exp: int, keep) -> torch.Tensor:
    """Indices of the open head's first n_exp expression channels whose name `keep` accepts."""
    from ..heads.arkit_channels import OPEN_HEAD_CHANNELS

    return torch.tensor([i for i, n in enumerate(OPEN_HEAD_CHANNELS[:n_exp]) if keep(n)])


@functools.cache
def upper_face_channels(n_exp: int) -> torch.Tensor:
    """Indices of the open head's upper-face channels (strengths.region_of, without the blinks,
    which alive.py makes) among its first n_exp expression channels."""
    from ..strengths import BLINK_CHANNELS, region_of

    return _open_head_channels(n_exp, lambda n: region_of(n) == "upper"
                               and n not in BLINK_CHANNELS)


MOUTH_EMOTION_PREFIXES = ("mouthSmile", "mouthDimple", "mouthFrown")


@functools.cache
def mouth_emotion_channels(n_exp: int) -> torch.Tensor:
    """Indices of the mouth channels the teacher drives from the emotion (smile, dimple, frown;
    speech barely uses them) among the open head's first n_exp expression channels."""
    return _open_head_channels(n_exp, lambda n: n.startswith(MOUTH_EMOTION_PREFIXES))


def derangement(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of range(n) with no fixed points (identity when n == 1)."""
    if n == 1:
        return torch.zeros(1, dtype=torch.long)
    order = torch.randperm(n, generator=generator)
    shift = int(torch.randint(1, n, (1,), generator=generator))
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(shift)
    return perm


def exchange_conditions(cond: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Copy of cond (B, T, C) whose emotion+intensity columns come from sequence perm[i]."""
    out = cond.clone()
    out[..., :EMOTION_AND_INTENSITY] = cond[perm][..., :EMOTION_AND_INTENSITY]
    return out


def stage2_losses(model, views, lip_reader, emotion_clf, b: dict, perm: torch.Tensor,
                  weights: dict, adversary: SpeakerAdversary | None = None,
                  adversary_weight: float = 0.0, upper_face_weight: float = 0.0,
                  mouth_emotion_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The weighted stage-2 loss of one batch and its parts (with `adversary`, also its voice
    cross-entropy through the gradient reversal, and its frame accuracy; with
    `upper_face_weight` and `mouth_emotion_weight`, the L1 error of the upper-face channels and of
    the smile, dimple and frown channels on the original half)."""
    B, T = b["cond"].shape[:2]
    cond2 = torch.cat([b["cond"], exchange_conditions(b["cond"], perm)], 0)
    encoded = model.audio_encoder.forward_features(b["feat"], T)  # the copy hears the same audio
    out = model.decode(torch.cat([encoded, encoded], 0), cond2)
    E = out.shape[-1] - 3
    pred = views(out[..., :E], out[..., E:])  # (2B, T, V, 3)
    mask, mask2 = b["mask"], torch.cat([b["mask"], b["mask"]], 0)
    with torch.no_grad():
        ref = views(b["exp"], b["jaw"])
        lip_ref = lip_reader.features(views.mouth(ref))
        emo_ref = emotion_clf.features(views.emotion(ref), mask)
    vert = vertex_mse(views.face(pred[:B]), views.face(ref), mask)
    # the copy keeps the original's lip gap: content (seals, openings) survives the new emotion
    gap_ref = views.lip_gap_mm(ref)
    gap = lip_gap_loss(views.lip_gap_mm(pred), torch.cat([gap_ref, gap_ref], 0), mask2,
                       closed_weight=weights["closed"])
    # mouth width on the original half only: a new emotion may widen (smile) or narrow the mouth
    width = mouth_width_loss(views.mouth_width_mm(pred[:B]), views.mouth_width_mm(ref), mask)
    lip_pred = lip_reader.features(views.mouth(pred))
    lip = cosine_distance(lip_pred, torch.cat([lip_ref, lip_ref], 0), mask2)
    emo_pred = emotion_clf.features(views.emotion(pred), mask2)
    emo = cosine_distance(emo_pred, torch.cat([emo_ref, emo_ref[perm]], 0))
    lip_copy = cosine_distance(lip_pred[B:], lip_ref, mask)
    emo_copy = cosine_distance(emo_pred[B:], emo_ref[perm])
    loss = (weights["vertex"] * vert + weights["lip"] * lip + weights["emotion"] * emo
            + weights["gap"] * gap + weights["width"] * width)
    parts = {"vertex_mm2": vert.item(), "lip": lip.item(), "emotion": emo.item(),
             "gap_mm": gap.item(), "width_mm": width.item(),
             "lip_copy": lip_copy.item(), "emotion_copy": emo_copy.item()}
    for name, weight, channels in (("upper_face", upper_face_weight, upper_face_channels),
                                   ("mouth_emotion", mouth_emotion_weight,
                                    mouth_emotion_channels)):
        if weight > 0:
            term = channel_l1(out[:B, :, :E], b["exp"], channels(E).to(out.device), mask)
            loss = loss + weight * term
            parts[name] = term.item()
    if adversary is not None:
        adv, acc = adversary.loss(encoded, b["voice"], mask)
        loss = loss + adversary_weight * adv
        parts.update(voice_ce=adv.item(), voice_acc=acc.item())
    return loss, parts


# the shipped recipe's loss weights (recipe.Stage2Weights says what each weighs)
DEFAULT_WEIGHTS = SHIPPED.stage2_weights.as_dict()


def train_stage2(model, views, lip_reader, emotion_clf, sampler, val_sampler, work, steps: int,
                 batch: int = SHIPPED.stages["stage2"].batch,
                 lr: float = SHIPPED.stages["stage2"].lr, weights: dict | None = None,
                 budget_s: float = float("inf"), device: str = "cpu", seed: int = 0,
                 feature_augment: FeatureAugment | None = None, adversary_weight: float = 0.0,
                 upper_face_weight: float = 0.0, flint_lr_scale: float = 0.0,
                 mouth_emotion_weight: float = 0.0, encoder_lr_scale: float = 1.0, log=print,
                 **loop_kw):
    """Fine-tune the stage-1 model with the EMOTE stage-2 losses; perceptual nets stay frozen.
    With `feature_augment` every training batch's log-mel is warped, tilted and masked afresh
    (validation never is); with `adversary_weight` > 0 a speaker adversary on the encoder's
    frames (speaker_adversary.py) is trained beside it and its reversed gradient, times the
    weight, reaches the encoder; `upper_face_weight` weighs an L1 term on the upper-face
    channels (losses.channel_l1), `mouth_emotion_weight` one on the smile, dimple and frown
    channels (a one-sided smile is what tells contempt from happy). `flint_lr_scale` > 0 also
    trains the FLINT decoder's weights at that fraction of the learning rate (its BatchNorm
    statistics stay frozen): a prior fitted to an older teacher cannot reach the current one's
    wide eyes or one-sided smile. `encoder_lr_scale` scales the audio encoder's learning rate
    (0 freezes it: the decoder learns, the speech features stay)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    groups = [{"params": trainable(model)}]  # Adam parameter groups
    if encoder_lr_scale != 1.0:  # the audio encoder in a group of its own, or frozen
        encoder = list(model.audio_encoder.parameters())
        ids = {id(p) for p in encoder}
        groups = [{"params": [p for p in groups[0]["params"] if id(p) not in ids]}]
        if encoder_lr_scale > 0:
            groups.append({"params": encoder, "lr": lr * encoder_lr_scale})
        else:
            for p in encoder:
                p.requires_grad_(False)
    if flint_lr_scale > 0:
        flint = list(model.flint.parameters())
        for p in flint:
            p.requires_grad_(True)
        groups.append({"params": flint, "lr": lr * flint_lr_scale})
    modules = {"model": model}
    adversary = None
    if adversary_weight > 0:
        adversary = SpeakerAdversary(model.audio_encoder.feature_dim,
                                     len(sampler.voice_names)).to(device)
        groups.append({"params": list(adversary.parameters())})
        modules["adversary"] = adversary
    for net in (lip_reader, emotion_clf):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    aug_rng = np.random.default_rng(seed + 17)

    def step(i):
        b = sampler.sample(batch, device)
        if feature_augment is not None:
            b["feat"] = augment_features(b["feat"], aug_rng, feature_augment)
        perm = derangement(b["cond"].shape[0], gen).to(device)
        return stage2_losses(model, views, lip_reader, emotion_clf, b, perm, w, adversary,
                             adversary_weight, upper_face_weight, mouth_emotion_weight)

    def val():
        vb = val_sampler.sample(batch, device)
        _, parts = stage2_losses(model, views, lip_reader, emotion_clf, vb,
                                 derangement(batch, torch.Generator().manual_seed(1)).to(device), w)
        parts.update(lip_sync_proxy(model, views, val_sampler.c, val_sampler.idx, device))
        return parts

    return run_stage("stage2", work, modules, groups, step, steps, lr, budget_s,
                     val_fn=val if val_sampler else None, samplers=(sampler,), log=log, **loop_kw)
