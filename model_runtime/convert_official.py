"""Convert the released EMOTE (v1 / v2) PyTorch-Lightning checkpoints into our checkpoint folder.

The `.ckpt` files are pickles. They are read without running code from them: first with
`torch.load(weights_only=True)`, and if the file holds other objects (Lightning hyper-parameters,
OmegaConf containers) with the restricted unpickler of `model_runtime.safe_pickle` and an allow-list
that only rebuilds tensors and plain containers and replaces a short list of known harmless
foreign classes by inert stand-ins (`checkpoint_allow_list`); anything else
(e.g. `os.system`) is refused before it is called. Every official key is mapped onto our modules;
only FLAME constants (`sequence_decoder.flame.*`) and renderer buffers (`renderer.*`) are ignored.
The talking-head checkpoint already holds the FLINT decoder, and that copy is what the official code
runs (it loads the talking-head weights over the FLINT ones), so it is the one converted; the
separate FLINT checkpoint, when given, is cross-checked against it and any difference reported.
`cfg.yaml` is required and checked setting by setting (model_runtime.official_cfg). The converted
folder runs with the official audio framing (whole 640-sample frames) and in one pass up to the
official 1200 frames; `attention` picks "trained" (default) or "official-demo" semantics.
"""

from __future__ import annotations

import datetime
import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import EmoteInputError
from .networks.attention_modes import ATTENTION_MODES, TRAINED
from .official_cfg import (OFFICIAL_MAX_FRAMES, OUTPUT_VERSIONS, check_flint_cfg,
                                        check_talking_head_cfg)
from .safe_pickle import (BASIC_NAMES, AllowList, StateRecorder,
                                       torch_pickle_module)

MEAD_IDENTITIES = (
    "M003", "M005", "M007", "M009", "M011", "M012", "M013", "M019", "M022", "M023", "M024",
    "M025", "M026", "M027", "M028", "M029", "M030", "M031", "W009", "W011", "W014", "W015",
    "W016", "W018", "W019", "W021", "W023", "W024", "W025", "W026", "W028", "W029")
IGNORED_PREFIXES = ("sequence_decoder.flame.", "renderer.")
_FLINT_PREFIX = "sequence_decoder.motion_prior.motion_decoder."
# Plain (prefix) renames from the official talking-head names to ours.
_RENAMES = (
    ("audio_model.model.", "audio_encoder.model."),
    ("sequence_encoder.linear.", "sequence_encoder."),
    ("sequence_decoder.obj_vector.map.", "style."),
    ("sequence_decoder.bert_decoder.layers.", "decoder_layers."),
    ("sequence_decoder.decoder.", "decoder_out."),
    ("sequence_decoder.squasher_2.linear.", "squasher."),
    (_FLINT_PREFIX + "decoder_transformer.layers.", "flint.decoder_transformer."),
    (_FLINT_PREFIX, "flint."),
)
LICENCE_NOTE = ("Weights converted from the official EMOTE release (Max Planck Institute for "
                "Intelligent Systems); they stay under the EMOTE licence (non-commercial research "
                "use). See https://emote.is.tue.mpg.de.")

# ---------------------------------------------------------------------------------------------
# Safe reading of torch / Lightning checkpoints

# Modules whose classes may appear as metadata in a Lightning checkpoint: they become inert
# stand-ins that only record their pickled state.
_STUB_MODULES = ("omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "pathlib",
                 "argparse", "typing", "inferno", "gdl", "enum")


class Opaque(StateRecorder, dict):
    """Stand-in for a foreign object in a checkpoint: keeps its pickled state, runs nothing.
    A dict, so that pickled mapping items (SETITEMS) land somewhere harmless."""

    def __init__(self, *args: Any, **kwargs: Any):
        StateRecorder.__init__(self, *args, **kwargs)

    def append(self, item: Any) -> None:
        self.setdefault("__items__", []).append(item)

    def extend(self, items: Any) -> None:
        for item in items:
            self.append(item)


def _checkpoint_stand_in(module: str, name: str) -> type | None:
    return Opaque if module.split(".")[0] in _STUB_MODULES and "." not in name else None


def checkpoint_allow_list() -> AllowList:
    """What a torch / Lightning checkpoint may ask for: tensors' rebuild functions, torch dtypes,
    plain containers, the basic numpy names and inert stand-ins for the metadata modules."""
    import collections

    import torch

    names: dict[str, Any] = {
        **BASIC_NAMES,
        "collections.OrderedDict": collections.OrderedDict,
        "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
    }
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            names[f"torch.{name}"] = getattr(torch, name)
    for name, obj in (("dict", dict), ("list", list), ("tuple", tuple), ("int", int),
                      ("float", float), ("str", str), ("bool", bool), ("bytes", bytes)):
        names[f"builtins.{name}"] = obj
    return AllowList(
        names=names, stand_in=_checkpoint_stand_in,
        accepted="A model checkpoint never needs that: the file is not an official EMOTE "
                 "checkpoint or was tampered with; download it again from the EMOTE website.")


def load_torch_checkpoint(path) -> dict:
    """A torch/Lightning checkpoint as a dict, without running code from it (see module doc)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"Checkpoint not found: {path}. Check the path.")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # holds non-tensor objects: try the restricted unpickler below
    except Exception as exc:  # noqa: BLE001 - many formats of damage
        raise _unreadable(path, exc) from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False,
                          pickle_module=torch_pickle_module(checkpoint_allow_list(), str(path)))
    except EmoteInputError:
        raise
    except Exception as exc:  # noqa: BLE001
        cause = exc.__context__ if isinstance(exc.__context__, EmoteInputError) else None
        if cause is not None:
            raise cause from None
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> EmoteInputError:
    return EmoteInputError("unreadable_file", f"Cannot read {path} as a PyTorch checkpoint "
                           f"({type(exc).__name__}: {exc}). Download it again.")


def _state_dict(ckpt: Any, path) -> dict:
    import torch

    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise EmoteInputError("bad_checkpoint", f"{path} holds no state_dict; select the "
                              "Lightning .ckpt file of the EMOTE release.")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise EmoteInputError("bad_checkpoint", f"{path}: state_dict entries that are not "
                              f"tensors: {', '.join(map(str, bad[:8]))}.")
    return dict(state)


# ---------------------------------------------------------------------------------------------
# Key mapping and architecture


def _pos_conv_names(model_keys) -> tuple[str, str]:
    """Names the installed transformers uses for the positional conv's weight norm (g, v)."""
    base = "audio_encoder.model.encoder.pos_conv_embed.conv."
    if base + "weight_g" in model_keys:
        return base + "weight_g", base + "weight_v"
    return base + "parametrizations.weight.original0", base + "parametrizations.weight.original1"


def map_official_key(key: str, pos_conv: tuple[str, str]) -> str | None:
    """Our name for an official talking-head key; None when it is one of the ignored prefixes."""
    if key.startswith(IGNORED_PREFIXES):
        return None
    if key.endswith("pos_conv_embed.conv.weight_g") and key.startswith("audio_model.model."):
        return pos_conv[0]
    if key.endswith("pos_conv_embed.conv.weight_v") and key.startswith("audio_model.model."):
        return pos_conv[1]
    for old, new in _RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return "<unmapped>." + key


def _shape(state: dict, key: str, path) -> tuple:
    if key not in state:
        raise EmoteInputError("bad_checkpoint", f"{path} is missing the key {key}; it is not an "
                              "EMOTE talking-head checkpoint (select last.ckpt of EMOTE or "
                              "EMOTE_v2).")
    return tuple(state[key].shape)


def official_sizes(state: dict, path) -> dict:
    """Layer sizes read from the official tensor shapes (what the weights fix, whatever the cfg)."""
    fp = _FLINT_PREFIX
    style_dim, cond_dim = _shape(state, "sequence_decoder.obj_vector.map.weight", path)
    sizes = {
        "output_dim": _shape(state, fp + "cross_smooth_layer.weight", path)[0],
        "cond_dim": cond_dim, "style_dim": style_dim,
        "seq_dim": _shape(state, "sequence_encoder.linear.weight", path)[0],
        "ff_dim": _shape(state, "sequence_decoder.bert_decoder.layers.0.linear1.weight", path)[0],
        "decoder_layers": len({k.split(".")[3] for k in state
                               if k.startswith("sequence_decoder.bert_decoder.layers.")}),
        "latent_dim": _shape(state, "sequence_decoder.decoder.weight", path)[0],
        "flint_quant": len({k.split(".")[4] for k in state if k.startswith(fp + "expander.")}),
        "flint_ff": _shape(state, fp + "decoder_transformer.layers.0.linear1.weight", path)[0],
        "flint_layers": len({k.split(".")[5] for k in state
                             if k.startswith(fp + "decoder_transformer.layers.")}),
    }
    if sizes["output_dim"] not in OUTPUT_VERSIONS:
        raise EmoteInputError(
            "bad_checkpoint", f"{path}: the FLINT decoder outputs {sizes['output_dim']} channels "
            f"(cross_smooth_layer); this runtime knows "
            f"{', '.join(f'{w} ({v})' for w, v in OUTPUT_VERSIONS.items())}: FLAME expression "
            "coefficients + 3 jaw axis-angle. Refused rather than guessing the layout.")
    return sizes


def official_arch(sizes: dict, cfg_values: dict, attention: str = TRAINED) -> dict:
    """Our architecture dict: sizes from the weights, heads / period / dropout from cfg.yaml."""
    return {
        "audio_encoder": "wav2vec2", "wav2vec2_config": {},
        **{k: sizes[k] for k in ("output_dim", "cond_dim", "seq_dim", "style_dim", "ff_dim",
                                 "decoder_layers", "latent_dim", "flint_quant", "flint_ff",
                                 "flint_layers")},
        "n_heads": int(cfg_values["nhead"]), "dropout": float(cfg_values["dropout"]),
        "period": int(cfg_values["period"]),
        "flint_heads": int(cfg_values.get("flint_nhead", 8)),
        "attention": attention,
    }


# ---------------------------------------------------------------------------------------------
# Conversion


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _list(items: list) -> str:
    return ", ".join(items[:10]) + (f" (and {len(items) - 10} more)" if len(items) > 10 else "")


def convert_state(state: dict, model_state: dict, path) -> dict:
    """Official state_dict -> ours; every key mapped or ignored, nothing missing (else an error)."""
    pos_conv = _pos_conv_names(model_state)
    out, unexpected = {}, []
    for key, value in state.items():
        ours = map_official_key(key, pos_conv)
        if ours is None:
            continue
        if ours not in model_state:
            unexpected.append(key)
            continue
        out[ours] = value
    missing = [k for k in model_state if k not in out]
    problems = []
    if unexpected:
        problems.append(f"unexpected keys: {_list(unexpected)}")
    if missing:
        problems.append(f"keys our model needs but the checkpoint lacks: {_list(missing)}")
    if problems:
        raise EmoteInputError("bad_checkpoint", f"{path} does not match the EMOTE architecture "
                              f"({'; '.join(problems)}). Select the talking-head last.ckpt of "
                              "the EMOTE or EMOTE_v2 release.")
    return out


FLINT_USED = ("the talking head's copy (sequence_decoder.motion_prior.motion_decoder.*), which "
              "the official code runs")


def crosscheck_flint(flint_state: dict, state: dict, path) -> dict:
    """Compare the FLINT checkpoint's decoder with the copy inside the talking head (the copy is
    what gets converted: the official code loads it over the FLINT checkpoint's weights)."""
    dec = {k[len("motion_decoder."):]: v for k, v in flint_state.items()
           if k.startswith("motion_decoder.")}
    other = [k for k in flint_state if not k.startswith(("motion_decoder.", "motion_encoder."))]
    if not dec or other:
        raise EmoteInputError("bad_checkpoint", f"{path} is not a FLINT motion-prior checkpoint "
                              f"(unexpected keys: {_list(other) or 'no motion_decoder.* keys'}).")
    inner = {k[len(_FLINT_PREFIX):]: v for k, v in state.items() if k.startswith(_FLINT_PREFIX)}
    if set(dec) != set(inner):
        raise EmoteInputError("bad_checkpoint", f"The FLINT decoder in {path} has different keys "
                              f"from the talking head's: {_list(sorted(set(dec) ^ set(inner)))}.")
    shapes = [k for k in dec if tuple(dec[k].shape) != tuple(inner[k].shape)]
    if shapes:
        raise EmoteInputError("bad_checkpoint", f"The FLINT checkpoint {path} does not belong to "
                              f"this EMOTE version (shapes differ: {_list(shapes)}); use FLINT v2 "
                              "with EMOTE_v2 and FLINT v1 with EMOTE v1.")
    diffs = {k: float((dec[k].double() - inner[k].double()).abs().max()) if dec[k].numel()
             else 0.0 for k in dec}
    differing = sorted(k for k, d in diffs.items() if d != 0.0)
    return {"flint_checkpoint": Path(path).name,
            "flint_decoder_max_abs_diff": max(diffs.values()),
            "flint_decoder_matches": not differing,
            "flint_decoder_differing_tensors": differing,
            "flint_decoder_used": FLINT_USED}


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def convert_official(ckpt, cfg_yaml, flint_ckpt, out_dir, attention: str = TRAINED,
                     flint_cfg=None, warn: Callable[[str], None] = _warn,
                     force: bool = False) -> Path:
    """Convert an official EMOTE v1/v2 `.ckpt` + its `cfg.yaml` (+ optional FLINT `.ckpt` to
    cross-check its decoder, + optional FLINT cfg.yaml to check its settings) into our checkpoint
    folder `out_dir` with the given attention semantics; returns the folder. Settings the runtime
    does not implement are refused (bad_checkpoint, naming key and value); `warn` gets what the
    user should know but does not stop the conversion.

    `out_dir` must be new, empty, or (with `force`) an earlier conversion, whose config.json and
    model.safetensors alone are replaced; a folder with other files (the download folder with
    the licensed weights) is refused before anything is read or written."""
    from .checkpoints import (WHOLE_FRAMES, build_model, check_output_folder,
                                           load_state_strict, make_config, save_checkpoint)

    hint = "Add --force to replace its config.json and model.safetensors, or choose a new folder."
    check_output_folder(out_dir, replace=force, force_hint=hint)
    if attention not in ATTENTION_MODES:
        raise EmoteInputError("bad_request", f"attention is {attention!r}; choose one of "
                              f"{', '.join(ATTENTION_MODES)}.")
    if cfg_yaml is None:
        raise EmoteInputError("missing_file", "The talking head's cfg.yaml is required: it says "
                              "which attention bias, style layout and squash the weights were "
                              "trained with. It lies beside last.ckpt in the EMOTE release.")
    ckpt = Path(ckpt)
    raw = load_torch_checkpoint(ckpt)
    state = _state_dict(raw, ckpt)
    sizes = official_sizes(state, ckpt)
    cfg_values = check_talking_head_cfg(cfg_yaml, sizes)
    if flint_cfg is not None:
        cfg_values.update(check_flint_cfg(flint_cfg, sizes))
    arch = official_arch(sizes, cfg_values, attention)
    n_ids = cfg_values["n_identities"]
    identities = MEAD_IDENTITIES if n_ids == len(MEAD_IDENTITIES) else \
        tuple(f"identity_{i:02d}" for i in range(n_ids))
    n_exp = arch["output_dim"] - 3
    version = OUTPUT_VERSIONS[arch["output_dim"]]
    provenance = {
        "source": f"official {version}, converted", "converted_from": ckpt.name,
        "sha256": _sha256(ckpt), "cfg_values_used": cfg_values, "attention": attention,
        "converter": "model_runtime.convert_official",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "licence": LICENCE_NOTE,
    }
    if flint_cfg is None:
        provenance["flint_settings"] = ("assumed (no FLINT cfg.yaml given): 8 heads, symmetric "
                                        "ALiBi, GELU, no positional encoding")
    if isinstance(raw, dict) and "epoch" in raw and isinstance(raw["epoch"], int):
        provenance["epoch"] = raw["epoch"]
    if flint_ckpt is not None:
        flint_state = _state_dict(load_torch_checkpoint(flint_ckpt), flint_ckpt)
        check = crosscheck_flint(flint_state, state, flint_ckpt)
        provenance.update(check)
        if not check["flint_decoder_matches"]:
            warn(f"the FLINT decoder in {Path(flint_ckpt).name} differs from the copy inside "
                 f"{ckpt.name} (max abs difference {check['flint_decoder_max_abs_diff']:.3g} in "
                 f"{len(check['flint_decoder_differing_tensors'])} tensors, e.g. "
                 f"{check['flint_decoder_differing_tensors'][0]}); using {FLINT_USED}.")
    config = make_config(arch, [f"exp{i:03d}" for i in range(n_exp)], identities, "flame2020",
                         provenance, inference={"audio_framing": WHOLE_FRAMES,
                                                "single_pass_frames": OFFICIAL_MAX_FRAMES})
    model = build_model(config)
    ours = convert_state(state, model.state_dict(), ckpt)
    load_state_strict(model, ours, str(ckpt))
    return save_checkpoint(model, config, out_dir, replace=force, force_hint=hint)


def main_convert(argv=None) -> int:
    """`python -m model_runtime.convert_official --ckpt ... --cfg ... [--flint ...] --out DIR`."""
    import argparse

    p = argparse.ArgumentParser(description=convert_official.__doc__)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--cfg")
    p.add_argument("--flint")
    p.add_argument("--flint-cfg")
    p.add_argument("--attention", choices=ATTENTION_MODES, default=TRAINED)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    try:
        out = convert_official(args.ckpt, args.cfg, args.flint, args.out,
                               attention=args.attention, flint_cfg=args.flint_cfg,
                               force=args.force)
    except EmoteInputError as exc:
        print(f"error ({exc.kind}): {exc.message}")
        return 2
    print(f"Wrote checkpoint folder {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main_convert())
