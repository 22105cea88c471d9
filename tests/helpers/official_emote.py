"""Synthetic stand-ins for the official EMOTE release: Lightning checkpoints with the real key names
and shapes (from /work/shared/official_emote_state_dict_shapes.json, random values) and cfg.yaml
files with the settings of EMOTE v1/v2 and FLINT as the official training configs resolve them."""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

import torch
import yaml

SHAPES_JSON = Path(__file__).resolve().parents[2].parent / "shared" / \
    "official_emote_state_dict_shapes.json"
if not SHAPES_JSON.is_file():
    SHAPES_JSON = Path("/work/shared/official_emote_state_dict_shapes.json")


def official_shapes(name: str) -> dict:
    """Key -> shape of the official checkpoint `name` (emote_v1, emote_v2, flint_v1, flint_v2);
    skips the calling test when the key list is not available."""
    if not SHAPES_JSON.is_file():
        import pytest

        pytest.skip(f"{SHAPES_JSON} (official key list) is not available")
    return json.loads(SHAPES_JSON.read_text())[name]


def fake_state(shapes: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        else:
            out[key] = torch.rand(shape, generator=g) - 0.5
    return out


class _OmegaLike:
    """Pickles as a foreign (omegaconf-like) class, like Lightning's hyper-parameters do."""

    def __init__(self, content):
        self._content = content


_OmegaLike.__module__ = "omegaconf.dictconfig"
_OmegaLike.__qualname__ = "DictConfig"
_OmegaLike.__name__ = "DictConfig"


def lightning_ckpt(path: Path, state: dict, foreign: bool = True) -> Path:
    ckpt = {"state_dict": state, "epoch": 3, "global_step": 1000,
            "pytorch-lightning_version": "1.4.9", "optimizer_states": [],
            "hyper_parameters": {"cfg": {"model": {"nhead": 8}}}}
    if foreign:
        mod = types.ModuleType("omegaconf.dictconfig")
        mod.DictConfig = _OmegaLike
        sys.modules.setdefault("omegaconf", types.ModuleType("omegaconf"))
        sys.modules["omegaconf.dictconfig"] = mod
        try:
            ckpt["hyper_parameters"] = _OmegaLike({"model": {"nhead": 8}})
            torch.save(ckpt, path)
        finally:
            del sys.modules["omegaconf.dictconfig"]
    else:
        torch.save(ckpt, path)
    return path


_TALKING_HEAD_CFG = {
    "model": {
        "audio": {"type": "wav2vec2", "model_specifier": "facebook/wav2vec2-base-960h",
                  "trainable": True, "with_processor": True, "model_expected_fps": 50,
                  "target_fps": 25, "freeze_feature_extractor": True},
        "sequence_encoder": {"type": "linear", "feature_dim": 128},
        "sequence_decoder": {
            "type": "BertPriorDecoder", "num_layers": 1, "feature_dim": 128, "nhead": 8,
            "dropout": 0.25, "activation": "gelu", "max_len": 600, "period": 30,
            "vertices_dim": 15069, "squash_before": False, "squash_after": True,
            "squash_type": "stack_linear", "style_op": "cat",
            "positional_encoding": {"type": "none"}, "temporal_bias_type": "faceformer_future",
            "flame": {"n_shape": 300, "n_exp": 100},
            "motion_prior": {"path": "MotionPrior/models/FLINTv2", "trainable": False},
            "flame_space_loss": False, "rotation_loss_space": "6d",
            "rotation_representation": "aa", "post_bug_fix": True,
            "style_embedding": {
                "use_shape": False, "type": "emotion_linear", "use_video_expression": False,
                "gt_expression_label": True, "gt_expression_intensity": True,
                "n_intensities": 3, "gt_expression_identity": True, "n_identities": 32,
                "disentangle_identity": False, "use_expression": False, "n_expression": 8,
                "use_valence": False, "use_arousal": False, "use_emotion_feature": False,
                "use_bias": True},
        },
        "output": {"predict_vertices": False, "predict_expcode": True,
                   "predict_jawpose": True},
    },
    "learning": {"learning_rate": 0.0001},
}

_FLINT_CFG = {
    "model": {
        "pl_module_class": "L2lVqVae", "rotation_representation": "aa",
        "sequence_components": {"exp": 100, "jaw": "rot"},
        "sizes": {"quant_factor": 3},
        "sequence_decoder": {
            "type": "L2lDecoder", "num_layers": 1, "feature_dim": 128,
            "intermediate_size": 384, "nhead": 8, "dropout": 0.0, "activation": "gelu",
            "positional_encoding": {"type": "none"},
            "temporal_bias": {"type": "alibi_future", "max_len": 600},
            "last_layer_init": False, "post_transformer_proj": {"init": "zeros"},
            "conv_smooth_layer": "l2l_default", "post_conv_proj": False},
    },
}


def _set(cfg: dict, dotted: str, value) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value


_DELETE = object()
DELETE = _DELETE  # pass as a value to remove the key


def talking_head_cfg(path: Path, n_exp: int = 100, **overrides) -> Path:
    """Write an EMOTE cfg.yaml (v2 with n_exp=100, v1 with 50); `overrides` are dotted keys with
    '__' for '.' (e.g. model__sequence_decoder__activation="relu"), DELETE removes a key."""
    cfg = copy.deepcopy(_TALKING_HEAD_CFG)
    cfg["model"]["sequence_decoder"]["flame"]["n_exp"] = n_exp
    for key, value in overrides.items():
        _set(cfg, key.replace("__", "."), value)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def flint_cfg(path: Path, n_exp: int = 100, **overrides) -> Path:
    """Write a FLINT cfg.yaml; overrides as in talking_head_cfg."""
    cfg = copy.deepcopy(_FLINT_CFG)
    cfg["model"]["sequence_components"]["exp"] = n_exp
    for key, value in overrides.items():
        _set(cfg, key.replace("__", "."), value)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def scaled_state(shapes: dict, seed: int) -> dict:
    """Random weights at about the scale of trained ones (matrices ~ 1/sqrt(fan-in), norms ~ 1,
    small biases, plausible BatchNorm statistics), so a whole forward pass stays O(1) and two
    implementations can be compared to 1e-4."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = torch.tensor(7, dtype=torch.long)
        elif leaf == "running_var":
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif leaf == "running_mean":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "weight_g":
            out[key] = 1.0 + 0.1 * torch.rand(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = 1
            for n in shape[1:]:
                fan_in *= n
            out[key] = torch.randn(shape, generator=g) * fan_in ** -0.5
        elif leaf == "weight":  # LayerNorm / BatchNorm scales
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out
