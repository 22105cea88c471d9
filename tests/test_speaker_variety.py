"""Stage 2's speaker variety: voice-balanced draws (dataset.speaker_balanced), voices recorded in
and recovered for the feature cache, and the per-batch log-mel transforms (feature_augment)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emote.model_runtime.training import plan as plan_module
from emote.model_runtime.training.dataset import speaker_balanced
from emote.model_runtime.training.feature_augment import (FeatureAugment, augment_features,
                                                          warp_positions)
from emote.model_runtime.training.feature_cache import voices_from_manifests
from emote.model_runtime.training.recipe import SHIPPED


def _shares(weights, voices):
    w = np.asarray(weights) / np.sum(weights)
    return {v: float(w[np.asarray(voices) == v].sum()) for v in set(voices)}


def test_balance_power_moves_draws_from_the_dominant_voice_to_the_others():
    frames = np.array([100.0] * 9 + [100.0])  # joe has 9 clips, ann 1
    voices = np.array(["joe"] * 9 + ["ann"])
    assert np.array_equal(speaker_balanced(frames, voices, 0.0), frames)  # draws by frames
    assert _shares(speaker_balanced(frames, voices, 0.0), voices)["ann"] == pytest.approx(0.1)
    assert _shares(speaker_balanced(frames, voices, 1.0), voices)["ann"] == pytest.approx(0.5)
    half = _shares(speaker_balanced(frames, voices, 0.5), voices)["ann"]
    assert 0.1 < half < 0.5 and half == pytest.approx(1 / (1 + 3))  # sqrt(900) vs sqrt(100)
    # within a voice, longer clips are still drawn more often
    w = speaker_balanced(np.array([50.0, 150.0, 100.0]), np.array(["a", "a", "b"]), 1.0)
    assert w[1] == pytest.approx(3 * w[0]) and w[0] + w[1] == pytest.approx(w[2])


def test_clips_of_unknown_voice_are_each_their_own_voice():
    w = speaker_balanced(np.array([10.0, 10.0, 10.0]), np.array(["", "", "x"]), 1.0)
    assert np.allclose(w, w[0])  # not pooled into one voice "" that would share one weight


def test_voices_come_back_from_the_manifests_for_an_older_cache(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    rows = [{"id": "queen-1", "wav": "a.wav", "phones": [], "voice": "queen:joe"},
            {"id": "ast-2", "wav": "b.wav", "phones": [], "voice": "asterisk:allison"}]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ids = np.array(["queen-1", "queen-1~aug0", "ast-2", "gone-3"])
    got = voices_from_manifests(ids, [str(folder), str(tmp_path / "missing")])
    assert got.tolist() == ["queen:joe", "queen:joe", "asterisk:allison", ""]


def test_cache_records_each_utterances_voice(tmp_path):
    from emote.model_runtime.training.feature_cache import Utterance, build_cache, load_cache

    rng = np.random.default_rng(0)
    utts = [Utterance(f"u{i}", rng.standard_normal(16000).astype(np.float32) * 0.1,
                      [["AA", 0.0, 1.0]], "train", "tts", voice) for i, voice in
            enumerate(["slt", "awb"])]
    path = build_cache(utts, tmp_path / "c.npz", lambda a: np.zeros((51, 4), np.float32),
                       lambda ph, a, w, i, s, r: (np.zeros((len(w), 3)), np.zeros((len(w), 3))),
                       lambda T, r: (np.eye(8)[np.zeros(T, int)], np.ones(T)), ["neutral"],
                       variants=1, progress=None)
    assert load_cache(path).voice.tolist() == ["slt", "awb"]


def _batch(B=6, F=40, n=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, F, n, generator=g) - 4.0


def test_augment_keeps_shape_and_changes_each_sample_on_its_own():
    x = _batch()
    y = augment_features(x, np.random.default_rng(1), FeatureAugment(p=1.0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(x, _batch())  # the input batch is left as it was
    for b in range(1, x.shape[0]):  # each sample drew its own warp, tilt and masks
        assert not torch.allclose(y[b] - x[b], y[0] - x[0])
    off = augment_features(x, np.random.default_rng(1), FeatureAugment(p=0.0))
    assert torch.equal(off, x)


def test_augment_never_moves_anything_in_time():
    """Each output frame depends only on the same input frame (targets are frame-exact)."""
    x = _batch(B=2)
    cfg = FeatureAugment(p=1.0)
    y = augment_features(x, np.random.default_rng(3), cfg)
    x2 = x.clone()
    x2[:, 10] += 5.0  # change one frame
    y2 = augment_features(x2, np.random.default_rng(3), cfg)
    changed = (y2 - y).abs().amax(dim=(0, 2)) > 1e-5
    assert changed.nonzero().flatten().tolist() == [10]


def test_warp_moves_a_formant_up_for_a_shorter_vocal_tract():
    assert np.allclose(warp_positions(80, 1.0), np.arange(80))
    n = 80
    x = torch.full((1, 1, n), -6.0)
    x[0, 0, 30] = 2.0  # a formant peak in band 30
    only_warp = FeatureAugment(p=1.0, warp=(1.12, 1.12), tilt=0.0, masks=0)
    y = augment_features(x, np.random.default_rng(0), only_warp)
    assert int(y[0, 0].argmax()) > 30  # the peak moved to higher bands
    y = augment_features(x, np.random.default_rng(0),
                         FeatureAugment(p=1.0, warp=(0.9, 0.9), tilt=0.0, masks=0))
    assert int(y[0, 0].argmax()) < 30


def test_masks_flatten_at_most_their_bands():
    x = _batch(B=8)
    cfg = FeatureAugment(p=1.0, warp=(1.0, 1.0), tilt=0.0, masks=2, mask_bands=5)
    y = augment_features(x, np.random.default_rng(5), cfg)
    for b in range(8):
        touched = ((y[b] - x[b]).abs().amax(dim=0) > 1e-6).sum()
        assert touched <= 2 * 5
        fill = x[b].mean(dim=1)
        for j in torch.nonzero((y[b] - x[b]).abs().amax(dim=0) > 1e-6).flatten():
            assert torch.allclose(y[b][:, j], fill, atol=1e-5)  # masked bands hold the frame mean


def test_options_set_balance_and_augment_and_default_to_the_recipe():
    r = plan_module.resolve_recipe(plan_module.parse_args([]))
    assert (r.speaker_balance, r.feature_augment) == (SHIPPED.speaker_balance,
                                                      SHIPPED.feature_augment)
    r = plan_module.resolve_recipe(plan_module.parse_args(
        ["--speaker-balance", "0.5", "--feature-augment", "on"]))
    assert (r.speaker_balance, r.feature_augment) == (0.5, True)
    for n, phase in enumerate(SHIPPED.fine_tunes, 1):
        ft = SHIPPED.fine_tune(n)
        assert (ft.speaker_balance, ft.feature_augment) == (phase.speaker_balance,
                                                            phase.feature_augment)


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    from emote.model_runtime.training.speaker_adversary import reverse_gradient

    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))


def test_voice_ids_index_the_sorted_voices():
    from emote.model_runtime.training.dataset import voice_ids

    ids, names = voice_ids(np.array(["queen:joe", "asterisk:allison", "queen:joe", ""]))
    assert names == ["", "asterisk:allison", "queen:joe"] and ids.tolist() == [2, 1, 2, 0]


def test_adversary_learns_voices_while_its_gradient_pushes_the_encoder_away():
    """Minimising the adversary's loss trains it to tell voices apart; the same step moves its
    input (the encoder's frames) so that the voices get harder to tell."""
    from emote.model_runtime.training.speaker_adversary import SpeakerAdversary

    torch.manual_seed(0)
    voice = torch.tensor([0, 1, 0, 1])
    centres = torch.randn(2, 8)
    frames = (centres[voice][:, None, :] + 0.3 * torch.randn(4, 10, 8)).requires_grad_(True)
    mask = torch.ones(4, 10)
    adv = SpeakerAdversary(8, 2, hidden=16)
    opt = torch.optim.Adam(adv.parameters(), lr=1e-2)
    first, _ = adv.loss(frames, voice, mask)
    for _ in range(100):
        opt.zero_grad()
        loss, acc = adv.loss(frames, voice, mask)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first.item() and acc.item() == 1.0
    # one step along the gradient the encoder receives makes the adversary's loss larger
    frames.grad = None
    loss, _ = adv.loss(frames, voice, mask)
    loss.backward()
    with torch.no_grad():
        moved = frames - 0.5 * frames.grad  # what the encoder's optimiser would do
        assert adv.loss(moved, voice, mask)[0] > loss


def test_upper_face_term_sees_brows_lids_and_cheeks_only():
    from emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS
    from emote.model_runtime.training.losses import channel_l1
    from emote.model_runtime.training.stage2 import upper_face_channels

    idx = upper_face_channels(len(OPEN_HEAD_CHANNELS))
    names = {OPEN_HEAD_CHANNELS[i] for i in idx.tolist()}
    assert {"browInnerUp", "browOuterUp_L", "eyeWide_R", "cheekSquint_L", "noseSneer_L"} <= names
    assert not names & {"eyeBlink_L", "eyeBlink_R", "jawOpen", "mouthSmile_L", "cheekPuff"}
    ref = torch.zeros(2, 5, len(OPEN_HEAD_CHANNELS))
    pred = ref.clone()
    pred[..., OPEN_HEAD_CHANNELS.index("mouthSmile_L")] = 1.0  # the lower face is not its business
    assert channel_l1(pred, ref, idx) == 0
    pred[..., OPEN_HEAD_CHANNELS.index("browInnerUp")] = 0.5
    assert channel_l1(pred, ref, idx).item() == pytest.approx(0.5 / len(idx))
    mask = torch.zeros(2, 5)
    assert channel_l1(pred, ref, idx, mask) == 0  # only valid frames count
