"""Converter for the official EMOTE checkpoints: synthetic Lightning checkpoints with the real key
names and shapes (from /work/shared/official_emote_state_dict_shapes.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers", reason="the converter needs the optional 'transformers' extra")

from emote.model_runtime.checkpoints import load_checkpoint  # noqa: E402
from emote.model_runtime.convert_official import (MEAD_IDENTITIES, convert_official,  # noqa: E402
                                            crosscheck_flint, load_torch_checkpoint,
                                            map_official_key)
from emote.model_runtime.emotions import INTENSITY_LEVELS, N_EMOTIONS  # noqa: E402
from emote.model_runtime.errors import EmoteInputError  # noqa: E402
from tests.helpers.official_emote import (fake_state, flint_cfg,  # noqa: E402
                                          lightning_ckpt, official_shapes, talking_head_cfg)

V1_EXP, V2_EXP = 50, 100  # FLAME expression coefficients of EMOTE v1 and v2
JAW = 3  # jaw axis-angle, after the expression
COND_DIM = N_EMOTIONS + INTENSITY_LEVELS + len(MEAD_IDENTITIES)  # the official condition

_shapes = official_shapes
_fake_state = fake_state
_lightning_ckpt = lightning_ckpt


def _check_converted(out: Path, state: dict, n_exp: int) -> None:
    model, config = load_checkpoint(out)
    assert config["architecture"]["audio_encoder"] == "wav2vec2"
    assert config["output"]["exp_names"] == [f"exp{i:03d}" for i in range(n_exp)]
    assert config["output"]["head_id"] == "flame2020"
    assert config["conditions"]["identities"] == list(MEAD_IDENTITIES)
    ours = model.state_dict()
    pos = tuple(k for k in ours if "pos_conv_embed.conv" in k and not k.endswith("bias"))
    consumed = set()
    for key, value in state.items():
        new = map_official_key(key, (sorted(pos)[0], sorted(pos)[1]))
        if new is None:
            assert key.startswith(("sequence_decoder.flame.", "renderer."))
            continue
        assert torch.equal(ours[new], value.to(ours[new].dtype)), key
        consumed.add(new)
    assert consumed == set(ours)


def test_convert_v1_every_key_consumed(tmp_path):
    shapes = _shapes("emote_v1")
    state = _fake_state(shapes, 1)
    state["renderer.some_buffer"] = torch.zeros(3)
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state)
    cfg = talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP)
    flint = _shapes("flint_v1")
    flint_state = _fake_state(flint, 2)
    for k in flint_state:  # the FLINT release's decoder: the talking head's copy, one tensor moved
        if k.startswith("motion_decoder."):
            flint_state[k] = state["sequence_decoder.motion_prior." + k].clone()
    flint_state["motion_decoder.post_transformer_linear.bias"] += 0.25
    flint_path = _lightning_ckpt(tmp_path / "flint.ckpt", flint_state, foreign=False)
    warnings = []
    out = convert_official(ckpt, cfg, flint_path, tmp_path / "converted",
                           flint_cfg=flint_cfg(tmp_path / "flint_cfg.yaml", n_exp=V1_EXP),
                           warn=warnings.append)
    _check_converted(out, state, V1_EXP)  # the talking head's copy of the decoder is what is used
    cfgj = json.loads((out / "config.json").read_text())
    prov = cfgj["provenance"]
    assert prov["flint_decoder_matches"] is False
    assert prov["flint_decoder_differing_tensors"] == ["post_transformer_linear.bias"]
    assert abs(prov["flint_decoder_max_abs_diff"] - 0.25) < 1e-6
    assert "talking head's copy" in prov["flint_decoder_used"]
    assert len(warnings) == 1 and "differs" in warnings[0] and "talking head's copy" in warnings[0]
    assert prov["cfg_values_used"] == {
        "nhead": 8, "period": 30, "dropout": 0.25, "n_identities": 32, "n_intensities": 3,
        "n_emotions": 8, "flint_nhead": 8}
    assert prov["attention"] == "trained"
    assert cfgj["format_version"] == 2 and cfgj["architecture"]["attention"] == "trained"
    assert cfgj["inference"] == {"audio_framing": "whole_frames", "single_pass_frames": 1200}
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.ckpt"))


def test_identical_flint_decoder_is_reported_as_matching():
    inner = {"expander.0.0.weight": torch.ones(2, 2), "cross_smooth_layer.bias": torch.zeros(3)}
    state = {"sequence_decoder.motion_prior.motion_decoder." + k: v for k, v in inner.items()}
    flint = {"motion_decoder." + k: v.clone() for k, v in inner.items()}
    flint["motion_encoder.mean.weight"] = torch.zeros(1)
    check = crosscheck_flint(flint, state, "flint.ckpt")
    assert check["flint_decoder_matches"] is True and check["flint_decoder_max_abs_diff"] == 0
    assert check["flint_decoder_differing_tensors"] == []


@pytest.mark.slow
def test_convert_v2_every_key_consumed(tmp_path):
    state = _fake_state(_shapes("emote_v2"), 3)
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state)
    out = convert_official(ckpt, talking_head_cfg(tmp_path / "cfg.yaml"), None, tmp_path / "v2")
    _check_converted(out, state, V2_EXP)
    model, _ = load_checkpoint(out)
    with torch.no_grad():
        y = model(torch.randn(1, 16000), torch.zeros(1, 25, COND_DIM))
    assert y.shape == (1, 25, V2_EXP + JAW) and torch.isfinite(y).all()


def _small_official_state() -> dict:
    """The v1 key set minus wav2vec2's transformer layers 1-11 (keeps the error tests quick)."""
    shapes = {k: v for k, v in _shapes("emote_v1").items()
              if not (k.startswith("audio_model.model.encoder.layers.")
                      and not k.startswith("audio_model.model.encoder.layers.0."))}
    return _fake_state(shapes, 4)


def test_missing_key_is_named(tmp_path):
    state = _fake_state(_shapes("emote_v1"), 5)
    del state["sequence_decoder.squasher_2.linear.bias"]
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state, foreign=False)
    with pytest.raises(EmoteInputError) as err:
        convert_official(ckpt, talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP), None,
                         tmp_path / "out")
    assert err.value.kind == "bad_checkpoint"
    assert "squasher.bias" in err.value.message
    assert not (tmp_path / "out").exists()


def test_extra_key_is_named(tmp_path):
    state = _small_official_state()
    state["sequence_decoder.extra_head.weight"] = torch.zeros(2, 2)
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state, foreign=False)
    with pytest.raises(EmoteInputError) as err:
        convert_official(ckpt, talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP), None,
                         tmp_path / "out")
    assert err.value.kind == "bad_checkpoint"
    assert "sequence_decoder.extra_head.weight" in err.value.message
    assert not (tmp_path / "out").exists()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "hyper_parameters": _Exploit(marker)}, ckpt)
    with pytest.raises(EmoteInputError) as err:
        load_torch_checkpoint(ckpt)
    assert err.value.kind == "unsafe_pickle"
    assert "system" in err.value.message
    with pytest.raises(EmoteInputError):
        convert_official(ckpt, talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP), None,
                         tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_foreign_metadata_loads_as_inert_standin(tmp_path):
    ckpt = _lightning_ckpt(tmp_path / "x.ckpt", {"w": torch.arange(4.0)})
    loaded = load_torch_checkpoint(ckpt)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(4.0))
    hp = loaded["hyper_parameters"]
    assert type(hp).source == "omegaconf.dictconfig.DictConfig"
    assert hp.state["_content"] == {"model": {"nhead": 8}}


def test_flint_of_other_version_is_rejected(tmp_path):
    state = _small_official_state()
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state, foreign=False)
    flint = _lightning_ckpt(tmp_path / "flint.ckpt", _fake_state(_shapes("flint_v2"), 6),
                            foreign=False)
    with pytest.raises(EmoteInputError) as err:
        convert_official(ckpt, talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP), flint,
                         tmp_path / "out")
    assert "cross_smooth_layer" in err.value.message


def test_refused_cfg_stops_the_conversion_and_writes_nothing(tmp_path):
    state = _small_official_state()
    ckpt = _lightning_ckpt(tmp_path / "last.ckpt", state, foreign=False)
    cfg = talking_head_cfg(tmp_path / "cfg.yaml", n_exp=V1_EXP,
                           model__sequence_decoder__activation="relu")
    with pytest.raises(EmoteInputError) as err:
        convert_official(ckpt, cfg, None, tmp_path / "out")
    assert "model.sequence_decoder.activation is 'relu'" in err.value.message
    assert not (tmp_path / "out").exists()


def test_cfg_is_required(tmp_path):
    with pytest.raises(EmoteInputError) as err:
        convert_official(tmp_path / "last.ckpt", None, None, tmp_path / "out")
    assert err.value.kind == "missing_file" and "cfg.yaml" in err.value.message
    with pytest.raises(EmoteInputError) as err:
        convert_official(tmp_path / "last.ckpt", tmp_path / "nope.yaml", None, tmp_path / "out",
                         attention="fast")
    assert err.value.kind == "bad_request" and "official-demo" in err.value.message


def test_out_folder_of_the_users_is_never_emptied(tmp_path):
    """--out pointing at the download folder is refused and its licensed files stay; an earlier
    conversion is replaced only with force, and then only its own two files."""
    state = _fake_state(_shapes("emote_v1"), 1)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    ckpt = _lightning_ckpt(downloads / "last.ckpt", state)
    cfg = talking_head_cfg(downloads / "cfg.yaml", n_exp=V1_EXP)
    before = {p.name: p.read_bytes() for p in downloads.iterdir()}
    with pytest.raises(EmoteInputError) as info:
        convert_official(ckpt, cfg, None, downloads)
    assert info.value.kind == "folder_not_ours" and str(downloads) in info.value.message
    assert {p.name: p.read_bytes() for p in downloads.iterdir()} == before
    out = convert_official(ckpt, cfg, None, tmp_path / "converted")
    (out / "my_notes.txt").write_text("keep")
    with pytest.raises(EmoteInputError) as info:
        convert_official(ckpt, cfg, None, out)
    assert "--force" in info.value.message
    convert_official(ckpt, cfg, None, out, force=True)
    assert (out / "my_notes.txt").read_text() == "keep"
    _check_converted(out, state, V1_EXP)
