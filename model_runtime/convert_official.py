"""Convert the released EMOTE (v1 / v2) PyTorch-Lightning checkpoints into our checkpoint folder.

The `.ckpt` files are pickles. They are read without running code from them: first with
`torch.load(weights_only=True)`, and if the file holds other objects (Lightning hyper-parameters,
OmegaConf containers) with a restricted unpickler that only rebuilds tensors and plain containers
and replaces a short list of known harmless foreign classes by inert stand-ins; anything else
(e.g. `os.system`) is refused before it is called. Every official key is mapped onto our modules;
only FLAME constants (`sequence_decoder.flame.*`) and renderer buffers (`renderer.*`) are ignored.
The talking-head checkpoint already holds the FLINT decoder; the separate FLINT checkpoint, when
given, is only cross-checked against it.
"""

from __future__ import annotations

import datetime
import hashlib
import pickle
import types
from pathlib import Path
from typing import Any

from model_runtime.errors import EmoteInputError

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


class Opaque(dict):
    """Stand-in for a foreign object in a checkpoint: keeps its pickled state, runs nothing."""

    source = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.setdefault("__items__", []).append(item)

    def extend(self, items: Any) -> None:
        for item in items:
            self.append(item)


def _allowed_globals() -> dict:
    import collections

    import numpy as np
    import torch

    from model_runtime import safe_pickle

    allowed: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
    }
    for key, value in safe_pickle._ALLOWED.items():  # numpy rebuilders, _codecs.encode, builtins
        if not key.startswith("copy"):
            allowed[key] = value
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[f"torch.{name}"] = getattr(torch, name)
    for name, obj in (("dict", dict), ("list", list), ("tuple", tuple), ("int", int),
                      ("float", float), ("str", str), ("bool", bool), ("bytes", bytes)):
        allowed[f"builtins.{name}"] = obj
    return allowed


class _Reconstructor:
    """`copyreg._reconstructor` limited to stand-in classes (and plain objects)."""

    def __call__(self, cls: Any, base: Any, state: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, Opaque):
            return cls()
        raise pickle.UnpicklingError("copyreg._reconstructor used with a class that is not allowed")


def _refusal(source: str, what: str) -> EmoteInputError:
    return EmoteInputError(
        "unsafe_pickle",
        f"Refusing to load {source}: the checkpoint asks to run {what}, which a model checkpoint "
        "never needs. The file is not an official EMOTE checkpoint or was tampered with; "
        "download it again from the EMOTE website.")


def _make_unpickler(source: str):
    allowed = {**_allowed_globals(), "copyreg._reconstructor": _Reconstructor()}

    class CheckpointUnpickler(pickle.Unpickler):
        """find_class hands out tensors' rebuild functions, containers and inert stand-ins only."""

        _stubs: dict = {}

        def find_class(self, module: str, name: str) -> Any:
            full = f"{module}.{name}"
            if full in allowed:
                return allowed[full]
            if module.split(".")[0] in _STUB_MODULES and "." not in name:
                if full not in self._stubs:
                    self._stubs[full] = type(name, (Opaque,), {"source": full})
                return self._stubs[full]
            raise _refusal(source, full)

    def load(file, **kwargs):
        return CheckpointUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(Unpickler=CheckpointUnpickler, load=load,
                                 __name__="model_runtime.convert_official.restricted")


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
                          pickle_module=_make_unpickler(str(path)))
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


def official_arch(state: dict, path, cfg_values: dict) -> dict:
    """Our architecture dict, with sizes read from the official tensor shapes."""
    fp = _FLINT_PREFIX
    output_dim = _shape(state, fp + "cross_smooth_layer.weight", path)[0]
    style_dim, cond_dim = _shape(state, "sequence_decoder.obj_vector.map.weight", path)
    seq_dim = _shape(state, "sequence_encoder.linear.weight", path)[0]
    latent = _shape(state, "sequence_decoder.decoder.weight", path)[0]
    n_layers = len({k.split(".")[3] for k in state
                    if k.startswith("sequence_decoder.bert_decoder.layers.")})
    n_flint_layers = len({k.split(".")[5] for k in state
                          if k.startswith(fp + "decoder_transformer.layers.")})
    n_expander = len({k.split(".")[4] for k in state if k.startswith(fp + "expander.")})
    return {
        "audio_encoder": "wav2vec2", "wav2vec2_config": {},
        "output_dim": output_dim, "cond_dim": cond_dim, "seq_dim": seq_dim,
        "style_dim": style_dim,
        "n_heads": int(cfg_values.get("nhead", 8)),
        "ff_dim": _shape(state, "sequence_decoder.bert_decoder.layers.0.linear1.weight", path)[0],
        "dropout": float(cfg_values.get("dropout", 0.25)),
        "period": int(cfg_values.get("period", 30)), "decoder_layers": n_layers,
        "latent_dim": latent, "flint_quant": n_expander, "flint_heads": 8,
        "flint_ff": _shape(state, fp + "decoder_transformer.layers.0.linear1.weight", path)[0],
        "flint_layers": n_flint_layers,
    }


def read_cfg_values(cfg_yaml) -> dict:
    """The few hyper-parameters we take from cfg.yaml (talking-head decoder heads, ALiBi period,
    dropout), when present; the EMOTE defaults otherwise."""
    if cfg_yaml is None:
        return {}
    path = Path(cfg_yaml)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"cfg.yaml not found: {path}. It lies beside the "
                              "checkpoint in the EMOTE release.")
    try:
        import yaml
    except ImportError:
        raise EmoteInputError("missing_dependency", "Reading cfg.yaml needs PyYAML: pip install "
                              "'emote-blender[official]' (or: pip install pyyaml).") from None
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EmoteInputError("unreadable_file", f"Cannot read {path} as YAML: {exc}.") from None
    found: dict = {}

    def walk(node, inside_decoder: bool, inside_prior: bool):
        if isinstance(node, dict):
            for k, v in node.items():
                k = str(k)
                dec = inside_decoder or k == "sequence_decoder"
                prior = inside_prior or k in ("motion_prior", "flint")
                if dec and not prior and k in ("nhead", "period", "dropout") \
                        and isinstance(v, (int, float)) and not isinstance(v, bool):
                    found.setdefault(k, v)
                walk(v, dec, prior)
        elif isinstance(node, list):
            for v in node:
                walk(v, inside_decoder, inside_prior)

    walk(cfg, False, False)
    return found


# ---------------------------------------------------------------------------------------------
# Conversion


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def crosscheck_flint(flint_state: dict, state: dict, path) -> dict:
    """Compare the FLINT checkpoint's decoder with the copy inside the talking head."""
    import torch

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
    diff = max(float((dec[k].double() - inner[k].double()).abs().max()) if dec[k].numel() else 0.0
               for k in dec)
    return {"flint_checkpoint": Path(path).name, "flint_decoder_max_abs_diff": diff,
            "flint_decoder_matches": diff == 0.0}


def convert_official(ckpt, cfg_yaml, flint_ckpt, out_dir, force: bool = False) -> Path:
    """Convert an official EMOTE v1/v2 `.ckpt` (+ cfg.yaml, + optional FLINT `.ckpt` for a
    cross-check) into our checkpoint folder `out_dir`; returns the folder.

    `out_dir` must be new, empty, or (with `force`) an earlier conversion, whose config.json and
    model.safetensors alone are replaced; a folder with other files (the download folder with
    the licensed weights) is refused before anything is read or written."""
    from model_runtime.checkpoints import (build_model, check_output_folder, load_state_strict,
                                           make_config, save_checkpoint)

    hint = "Add --force to replace its config.json and model.safetensors, or choose a new folder."
    check_output_folder(out_dir, replace=force, force_hint=hint)
    ckpt = Path(ckpt)
    cfg_values = read_cfg_values(cfg_yaml)
    raw = load_torch_checkpoint(ckpt)
    state = _state_dict(raw, ckpt)
    arch = official_arch(state, ckpt, cfg_values)
    n_ids = arch["cond_dim"] - 11
    identities = MEAD_IDENTITIES if n_ids == len(MEAD_IDENTITIES) else \
        tuple(f"identity_{i:02d}" for i in range(n_ids))
    n_exp = arch["output_dim"] - 3
    version = {103: "EMOTE_v2", 53: "EMOTE v1"}.get(arch["output_dim"], "EMOTE (unknown version)")
    provenance = {
        "source": f"official {version}, converted", "converted_from": ckpt.name,
        "sha256": _sha256(ckpt), "cfg_values_used": cfg_values,
        "converter": "model_runtime.convert_official",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "licence": LICENCE_NOTE,
    }
    if isinstance(raw, dict) and "epoch" in raw and isinstance(raw["epoch"], int):
        provenance["epoch"] = raw["epoch"]
    if flint_ckpt is not None:
        flint_state = _state_dict(load_torch_checkpoint(flint_ckpt), flint_ckpt)
        provenance.update(crosscheck_flint(flint_state, state, flint_ckpt))
    config = make_config(arch, [f"exp{i:03d}" for i in range(n_exp)], identities, "flame2020",
                         provenance)
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
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    try:
        out = convert_official(args.ckpt, args.cfg, args.flint, args.out, force=args.force)
    except EmoteInputError as exc:
        print(f"error ({exc.kind}): {exc.message}")
        return 2
    print(f"Wrote checkpoint folder {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main_convert())
