"""End to end: a converted stand-in of the official EMOTE v1 (and, in the slow suite, v2) checkpoint (the real key names and
shapes, random weights at a trained-like scale) run by our runtime equals a re-run of the official
structure built from torch's own modules (transformers' Wav2Vec2Model, nn.TransformerEncoder with
the official float masks, the official squash and FLINT decoder layout) on the same audio:

- `official-demo` attention against torch's fast path (eval + no_grad, as the official demo runs),
- `trained` attention against torch's slow path,

with the official framing (int16 samples cut to whole 640-sample frames, normalised) on a clip
with a partial last frame, and in one pass: the clip is longer than our default 504-frame window.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("transformers", reason="official checkpoints need the 'transformers' extra")

from emote.model_runtime.convert_official import convert_official  # noqa: E402
from emote.model_runtime.inference import generate_result, get_model  # noqa: E402
from tests.helpers.official_emote import (lightning_ckpt, official_shapes,  # noqa: E402
                                          scaled_state, talking_head_cfg)

torch.set_num_threads(2)
T_FRAMES = 520  # > 504 (our default window), < 1200 (the official single pass)
TAIL = 400  # samples after the last whole frame: 0.625 frame, so the result has T + 1 frames
EMOTION, INTENSITY, IDENTITY = 1, 2, 0  # happy, level 3, M003


def _official_mask(T: int, period: int) -> torch.Tensor:
    """(8, T, T) official float mask: -slope_h * (|i-j| // period), or -slope_h * |i-j|."""
    slopes = torch.tensor([0.5 ** (h + 1) for h in range(8)])
    idx = torch.arange(T)
    dist = (idx[:, None] - idx[None, :]).abs()
    return -slopes[:, None, None] * (dist // period if period else dist)[None].float()


def _encoder(state: dict, prefix: str, d: int, ff: int, dropout: float):
    layer = torch.nn.TransformerEncoderLayer(d, 8, ff, dropout=dropout, activation="gelu",
                                             batch_first=True)
    enc = torch.nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
    enc.layers[0].load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                   if k.startswith(prefix)})
    return enc.eval().requires_grad_(False)


def official_rerun(state: dict, samples_int16: np.ndarray) -> torch.Tensor:
    """The official inference structure, from torch / transformers modules -> (T, exp + 3)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    T = samples_int16.shape[0] // 640
    x = samples_int16[:T * 640].astype(np.float32)  # the official framing: whole frames only
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # wav2vec2's processor normalisation
    w2v = Wav2Vec2Model(Wav2Vec2Config()).eval()
    ours = w2v.state_dict()
    w2v_state = {}
    for k, v in state.items():
        if k.startswith("audio_model.model."):
            k = k[len("audio_model.model."):]
            if k.endswith("weight_g") and k not in ours:
                k = k.replace("weight_g", "parametrizations.weight.original0")
            if k.endswith("weight_v") and k not in ours:
                k = k.replace("weight_v", "parametrizations.weight.original1")
            w2v_state[k] = v
    w2v.load_state_dict(w2v_state)
    sd = "sequence_decoder."
    mp = sd + "motion_prior.motion_decoder."

    def linear(name, v):
        return torch.nn.functional.linear(v, state[name + ".weight"], state[name + ".bias"])

    with torch.no_grad():
        feats = w2v.feature_extractor(torch.from_numpy(x)[None]).transpose(1, 2)
        feats = torch.nn.functional.interpolate(feats.transpose(1, 2), size=T, mode="linear",
                                                align_corners=True).transpose(1, 2)
        hidden, _ = w2v.feature_projection(feats)
        audio = w2v.encoder(hidden).last_hidden_state
        cond = torch.zeros(1, T, 43)
        cond[..., EMOTION] = 1
        cond[..., 8 + INTENSITY] = 1
        cond[..., 11 + IDENTITY] = 1
        styled = torch.cat([linear("sequence_encoder.linear", audio),
                            linear(sd + "obj_vector.map", cond)], -1)
        bert = _encoder(state, sd + "bert_decoder.layers.0.", 256, 256, 0.25)
        y = linear(sd + "decoder", bert(styled, mask=_official_mask(T, 30)))
        pad = (-T) % 8
        y = torch.nn.functional.pad(y, (0, 0, 0, pad))
        z = linear(sd + "squasher_2.linear", y.reshape(1, (T + pad) // 8, 8 * 128))
        h = z.transpose(1, 2)
        for i in range(3):
            conv = (torch.nn.ConvTranspose1d(128, 128, 5, stride=2, padding=2, output_padding=1)
                    if i == 0 else
                    torch.nn.Conv1d(128, 128, 5, padding=2, padding_mode="replicate"))
            block = torch.nn.Sequential(conv, torch.nn.LeakyReLU(0.2), torch.nn.BatchNorm1d(128))
            pre = f"{mp}expander.{i}."
            block.load_state_dict({k[len(pre):]: v for k, v in state.items()
                                   if k.startswith(pre)})
            h = block.eval()(h)
            if i > 0:
                h = h.repeat_interleave(2, dim=2)
        h = linear(mp + "decoder_linear_embedding", h.transpose(1, 2))
        flint = _encoder(state, mp + "decoder_transformer.layers.0.", 128, 384, 0.0)
        h = flint(h, mask=_official_mask(h.shape[1], 0))
        h = linear(mp + "post_transformer_linear", h)
        out = torch.nn.functional.conv1d(h.transpose(1, 2), state[mp + "cross_smooth_layer.weight"],
                                         state[mp + "cross_smooth_layer.bias"], padding=2)
    return out.transpose(1, 2)[0, :T]


@pytest.fixture(scope="module", params=["emote_v1", pytest.param("emote_v2",
                                                                   marks=pytest.mark.slow)])
def converted(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp(request.param)
    state = scaled_state(official_shapes(request.param), seed=11)
    n_exp = 50 if request.param == "emote_v1" else 100
    ckpt = lightning_ckpt(tmp / "last.ckpt", state)
    demo = convert_official(ckpt, talking_head_cfg(tmp / "cfg.yaml", n_exp=n_exp), None,
                            tmp / "demo", attention="official-demo")
    trained = tmp / "trained"
    shutil.copytree(demo, trained)
    cfg = json.loads((trained / "config.json").read_text())
    cfg["architecture"]["attention"] = "trained"
    (trained / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(5)
    n = T_FRAMES * 640 + TAIL
    t = np.arange(n) / 16000
    speech = np.sin(2 * np.pi * 180 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    samples = np.round((0.3 * speech + 0.02 * rng.standard_normal(n)) * 32767).astype(np.int16)
    wav = tmp / "clip.wav"
    sf.write(str(wav), samples, 16000, subtype="PCM_16")
    return {"state": state, "demo": demo, "trained": trained, "wav": wav, "samples": samples,
            "n_exp": n_exp}


_RESULTS: dict = {}


def _ours(folder, wav) -> dict:
    if str(folder) in _RESULTS:
        return _RESULTS[str(folder)]
    model, config, model_id = get_model(str(folder))
    req = {"audio": str(wav), "fps": 25.0, "model": str(folder), "identity": "M003",
           "emotion": {"names": ["happy"], "weights": [[1.0]]}, "intensity": [1.0]}
    _RESULTS[str(folder)] = generate_result(req, model, config, model_id)
    return _RESULTS[str(folder)]


@pytest.mark.parametrize("mode", ["official-demo", "trained"])
def test_converted_checkpoint_matches_official_structure(converted, mode):
    folder = converted["demo" if mode == "official-demo" else "trained"]
    res = _ours(folder, converted["wav"])
    if mode == "trained":
        torch.backends.mha.set_fastpath_enabled(False)
    try:
        ref = official_rerun(converted["state"], converted["samples"]).numpy()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    assert res["exp"].shape == (T_FRAMES + 1, converted["n_exp"])  # padded to the frame count
    got = np.concatenate([res["exp"], res["jaw"]], 1)
    assert np.abs(ref).max() > 0.1  # a real signal, not a vanishing one
    print(f"{mode}: max |ours - official| = {np.abs(got[:T_FRAMES] - ref).max():.2e}, "
          f"max |official| = {np.abs(ref).max():.2f}")
    assert np.abs(got[:T_FRAMES] - ref).max() < 1e-4
    assert np.abs(got[T_FRAMES] - ref[-1]).max() < 1e-4  # the partial frame holds the last


def test_the_two_modes_really_differ(converted):
    demo = _ours(converted["demo"], converted["wav"])["exp"]
    trained = _ours(converted["trained"], converted["wav"])["exp"]
    assert np.abs(demo - trained).max() > 1e-2
