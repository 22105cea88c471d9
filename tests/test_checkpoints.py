"""Checkpoint folders: save/load round trip, strict keys, clear errors, the default model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from emote.model_runtime import checkpoints
from emote.model_runtime.checkpoints import (EMOTIONS, build_model, default_arch, default_model_dir,
                                       load_checkpoint, make_config, save_checkpoint, tiny_config)
from emote.model_runtime.emotions import INTENSITY_LEVELS, N_EMOTIONS
from emote.model_runtime.errors import EmoteInputError

torch.set_num_threads(1)
EXP = ["jawOpen", "smile", "frown"]
IDENTITIES = ("alice", "bob")
COND_DIM = N_EMOTIONS + INTENSITY_LEVELS + len(IDENTITIES)  # the condition vector


def _saved(tmp_path, **kw):
    cfg = tiny_config(EXP, identities=IDENTITIES, **kw)
    torch.manual_seed(3)
    model = build_model(cfg)
    return model, cfg, save_checkpoint(model, cfg, tmp_path / "ckpt")


def test_round_trip_gives_same_outputs(tmp_path):
    model, cfg, folder = _saved(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded, cfg2 = load_checkpoint(folder)
    assert cfg2 == json.loads(json.dumps(cfg)) and not loaded.training
    audio, cond = torch.randn(1, 40 * 640), torch.rand(1, 40, COND_DIM)
    with torch.no_grad():
        assert torch.equal(model.eval()(audio, cond), loaded(audio, cond))
    assert cfg2["conditions"]["emotions"] == list(EMOTIONS)
    assert cfg2["output"] == {"head_id": "flame2020", "exp_names": EXP, "jaw": "axis_angle"}


def test_tiny_config_is_small_and_complete():
    cfg = tiny_config(EXP)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) < 20000
    assert cfg["fps"] == 25 and cfg["sample_rate"] == 16000 and cfg["format_version"] == 1
    assert cfg["architecture"]["output_dim"] == len(EXP) + 3
    assert cfg["architecture"]["cond_dim"] == 12


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path):
    model, cfg, folder = _saved(tmp_path)
    cfg["provenance"]["note"] = "second"
    save_checkpoint(model, cfg, folder)
    assert json.loads((folder / "config.json").read_text())["provenance"]["note"] == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_failed_save_leaves_nothing(tmp_path):
    model, cfg, _ = _saved(tmp_path)
    cfg["architecture"]["output_dim"] = 99  # does not match exp_names
    with pytest.raises(EmoteInputError):
        save_checkpoint(model, cfg, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_missing_and_unexpected_keys_are_named(tmp_path):
    _, _, folder = _saved(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    del state["squasher.bias"]
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(folder)
    assert err.value.kind == "bad_checkpoint"
    assert "squasher.bias" in err.value.message and "extra.weight" in err.value.message


def test_shape_mismatch_is_named(tmp_path):
    _, _, folder = _saved(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    state["style.weight"] = torch.zeros(3, 3)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(folder)
    assert err.value.kind == "bad_checkpoint" and "style.weight" in err.value.message


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(tmp_path / "nowhere")
    assert err.value.kind == "missing_file"
    _, _, folder = _saved(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(folder)
    assert "model.safetensors" in err.value.message


def test_damaged_files(tmp_path):
    _, _, folder = _saved(tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(folder)
    assert err.value.kind == "bad_checkpoint"
    (folder / "config.json").write_text("{broken")
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint(folder)
    assert err.value.kind == "bad_checkpoint"


def test_inconsistent_config_is_rejected(tmp_path):
    cfg = tiny_config(EXP)
    cfg["architecture"]["cond_dim"] = 40
    with pytest.raises(EmoteInputError) as err:
        build_model(cfg)
    assert "cond_dim" in err.value.message
    cfg = tiny_config(EXP)
    cfg["format_version"] = 7
    with pytest.raises(EmoteInputError):
        build_model(cfg)


def test_no_default_model_message(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "default_model_dir", lambda: tmp_path / "default_model")
    with pytest.raises(EmoteInputError) as err:
        load_checkpoint("default")
    assert err.value.kind == "no_default_model"
    assert "No default model is installed" in err.value.message
    _, cfg, _ = _saved(tmp_path)
    save_checkpoint(build_model(cfg), cfg, tmp_path / "default_model")
    model, cfg2 = load_checkpoint("default")
    assert cfg2["conditions"]["identities"] == ["alice", "bob"]
    assert default_model_dir().name == "default_model"


def test_default_arch_size():
    cfg = make_config(default_arch(103, 32), [f"e{i}" for i in range(100)],
                      [f"id{i}" for i in range(32)], "flame2020")
    n = sum(p.numel() for p in build_model(cfg).parameters())
    assert n * 4 < 25e6  # float32 checkpoint under 25 MB
