"""EMOTE networks: shapes at any length, ALiBi biases, determinism, frozen BatchNorm, FLINT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emote.model_runtime.checkpoints import build_model, tiny_config
from emote.model_runtime.emotions import INTENSITY_LEVELS, N_EMOTIONS
from emote.model_runtime.networks.alibi import AlibiEncoderLayer, alibi_bias, alibi_slopes
from emote.model_runtime.networks.audio_encoders import (LogMelEncoder, mel_filterbank,
                                                   normalise_audio)
from emote.model_runtime.networks.flint import FlintDecoder, FlintEncoder, FlintVAE
from emote.model_runtime.networks.talking_head import TalkingHead

torch.set_num_threads(1)
EXP = [f"exp{i:03d}" for i in range(10)]
IDENTITIES = ("a", "b")
COND_DIM = N_EMOTIONS + INTENSITY_LEVELS + len(IDENTITIES)
OUT_DIM = len(EXP) + 3  # expression coefficients + jaw axis-angle
ONE_ID_COND_DIM = N_EMOTIONS + INTENSITY_LEVELS + 1  # tiny_config's single default identity


def _tiny(**overrides) -> TalkingHead:
    cfg = tiny_config(EXP, identities=IDENTITIES)
    cfg["architecture"].update(overrides)
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _inputs(T: int, B: int = 1, cond_dim: int = COND_DIM):
    g = torch.Generator().manual_seed(T)
    return torch.randn(B, T * 640, generator=g), torch.rand(B, T, cond_dim, generator=g)


@pytest.mark.parametrize("T", [1, 3, 8, 13, 64, 101])
def test_talking_head_shapes(T):
    model = _tiny()
    audio, cond = _inputs(T, B=2)
    with torch.no_grad():
        y = model(audio, cond)
    assert y.shape == (2, T, OUT_DIM)
    assert torch.isfinite(y).all()


def test_long_sequence_has_no_cap():
    model = _tiny()
    audio, cond = _inputs(3000)
    with torch.no_grad():
        y = model(audio, cond)
    assert y.shape == (1, 3000, OUT_DIM) and torch.isfinite(y).all()


def test_periodic_alibi_values():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -k for k in range(1, 9)]))
    b = alibi_bias(8, 70, 70, period=30)
    assert b.shape == (8, 70, 70)
    assert b[0, 0, 29] == 0 and b[0, 0, 30] == -0.5 and b[0, 0, 61] == -1.0
    assert b[7, 65, 0] == -2 / 256 and torch.equal(b, b.transpose(1, 2))
    plain = alibi_bias(8, 5, 5)
    assert plain[1, 4, 1] == -3 / 4 and plain[2, 2, 2] == 0
    offset = alibi_bias(4, 3, 50, period=30, query_offset=40)
    assert torch.equal(offset, alibi_bias(4, 50, 50, period=30)[:, 40:43])


@pytest.mark.parametrize("period", [0, 3])
def test_alibi_layer_matches_torch_layer(period, monkeypatch):
    """Same weights in torch's TransformerEncoderLayer with the explicit bias give the same result,
    also when our layer attends in query blocks."""
    torch.manual_seed(1)
    ours = AlibiEncoderLayer(16, 4, 24, dropout=0.0, period=period).eval()
    ref = torch.nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, activation="gelu",
                                           batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 37, 16)
    mask = alibi_bias(4, 37, 37, period).repeat(2, 1, 1)
    expected = ref(x, src_mask=mask)  # with grad: torch's no-grad fast path is not the reference
    monkeypatch.setattr("emote.model_runtime.networks.alibi._QUERY_BLOCK", 10)
    got = ours(x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_eval_is_deterministic_and_batch_independent():
    model = _tiny(dropout=0.5)
    audio, cond = _inputs(40, B=2)
    with torch.no_grad():
        a = model(audio, cond)
        b = model(audio, cond)
        single = model(audio[1:], cond[1:])
    assert torch.equal(a, b)
    assert torch.allclose(a[1:], single, atol=1e-5)


def test_forward_features_equals_forward():
    model = _tiny()
    audio, cond = _inputs(30)
    with torch.no_grad():
        feats = model.audio_features(audio)
        assert torch.allclose(model.forward_features(feats, cond), model(audio, cond))


def test_condition_changes_output():
    model = _tiny()
    audio, cond = _inputs(24)
    torch.nn.init.normal_(model.flint.post_transformer_linear.weight)
    other = cond.clone()
    other[..., :8] = torch.flip(other[..., :8], [-1])
    with torch.no_grad():
        assert not torch.allclose(model(audio, cond), model(audio, other))


def test_batchnorm_stays_frozen_in_training():
    model = _tiny()
    model.train()
    bns = [m for m in model.flint.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns and all(not m.training for m in bns)
    assert model.decoder_layers[0].training
    before = [m.running_mean.clone() for m in bns]
    audio, cond = _inputs(16, B=2)
    model(audio, cond).sum().backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    model.flint.freeze_batchnorm(False)
    model.train()
    assert all(m.training for m in bns)


def test_zero_init_gives_constant_latent():
    cfg = tiny_config(EXP)
    model = TalkingHead(cfg["architecture"], zero_init=True).eval()
    audio, cond = _inputs(16, cond_dim=ONE_ID_COND_DIM)
    assert torch.count_nonzero(model.decoder_out.weight) == 0
    with torch.no_grad():
        y1 = model(audio, cond)
        y2 = model(torch.randn_like(audio), torch.rand_like(cond))
    assert torch.allclose(y1, y2)


def test_flint_round_trip_shapes():
    arch = {"output_dim": 13, "latent_dim": 16, "flint_heads": 2, "flint_ff": 24}
    vae = FlintVAE(arch)
    motion = torch.randn(3, 32, 13)
    recon, mean, logvar = vae(motion)
    assert recon.shape == motion.shape and mean.shape == logvar.shape == (3, 4, 16)
    loss = torch.nn.functional.mse_loss(recon, motion) + FlintVAE.kl_loss(mean, logvar)
    loss.backward()
    assert vae.motion_encoder.mean.weight.grad is not None
    vae.eval()
    with torch.no_grad():
        r1, m1, _ = vae(motion)
        r2, _, _ = vae(motion)
    assert torch.equal(r1, r2)
    assert torch.allclose(r1, vae.motion_decoder(m1))
    with pytest.raises(ValueError):
        FlintEncoder(arch)(torch.randn(1, 30, 13))
    assert FlintDecoder(arch)(torch.randn(2, 5, 16)).shape == (2, 40, 13)


def test_logmel_features_and_receptive_field():
    enc = LogMelEncoder({"logmel_hidden": 8, "logmel_channels": 8}).eval()
    sr = 16000
    t = torch.arange(sr) / sr
    feats = enc.features(torch.sin(2 * np.pi * 1000 * t)[None])
    assert feats.shape == (1, 1 + sr // 320, 80)
    fb = mel_filterbank(sr, 512, 80, 0.0, 8000.0)
    peak_band = int(fb[round(1000 / (sr / 512))].argmax())
    assert int(feats[0, 25].argmax()) == peak_band
    tel = LogMelEncoder({"fmax": 4000.0})
    assert float(tel.mel_fb[int(4100 / (sr / 512)):].abs().sum()) == 0.0
    # an impulse at 1 s changes features only within about +-200 ms (+ STFT window)
    x = torch.zeros(1, 2 * sr)
    y = x.clone()
    y[0, sr] = 1.0
    with torch.no_grad():
        torch.manual_seed(0)
        for p in enc.parameters():
            torch.nn.init.normal_(p, std=0.3)
        d = (enc(x, 50) - enc(y, 50)).abs().sum(-1)[0]
    changed = torch.nonzero(d > 1e-6).flatten()
    assert changed.numel() > 0
    assert 25 - 7 <= int(changed.min()) and int(changed.max()) <= 25 + 7


def test_normalise_audio():
    x = np.random.default_rng(0).normal(3.0, 2.0, 8000).astype(np.float32)
    y = normalise_audio(x)
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-4
    yt = normalise_audio(torch.from_numpy(x)[None])
    assert torch.allclose(yt[0], torch.from_numpy(y), atol=1e-5)
    assert np.all(normalise_audio(np.zeros(100, np.float32)) == 0)


def test_wav2vec2_encoder_resamples_before_projection():
    pytest.importorskip("transformers", reason="wav2vec2 needs the optional 'transformers' extra")
    cfg = tiny_config(EXP, audio_encoder="wav2vec2")
    model = build_model(cfg).eval()
    audio, cond = _inputs(20, cond_dim=ONE_ID_COND_DIM)
    enc = model.audio_encoder
    with torch.no_grad():
        feats = enc.features(audio)
        assert feats.shape == (1, 39, 8)  # (12800 - 400) // 320 + 1 frames at ~50 fps
        out = enc(audio, 20)
        assert out.shape == (1, 20, 16)
        x = torch.nn.functional.interpolate(feats.transpose(1, 2), size=20, mode="linear",
                                            align_corners=True).transpose(1, 2)
        hidden, _ = enc.model.feature_projection(x)
        assert torch.allclose(out, enc.model.encoder(hidden).last_hidden_state)
        assert model(audio, cond).shape == (1, 20, OUT_DIM)
        assert model(torch.randn(1, 100), cond[:, :1]).shape == (1, 1, OUT_DIM)
