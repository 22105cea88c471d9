"""Checkpoint folders: `config.json` + `model.safetensors` (no pickles), built, saved and loaded.

`config.json` holds everything `build_model` needs (`architecture`), the frame and sample rates,
the condition layout (emotions in EMOTE order, intensity levels, identity names), the output
layout (head id, expression names, jaw as axis-angle) and where the weights came from.

Format 2 adds what converted official checkpoints need: `architecture.attention` ("trained" or
"official-demo", see networks.attention_modes) and an `inference` block (`audio_framing`:
"whole_clip" or "whole_frames"; `single_pass_frames`: the longest clip run in one pass). A config
is written with the lowest format that holds it, so our own models stay format 1; a format-1
folder means trained attention, whole-clip framing and the runtime's default window.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import EmoteInputError
from .networks.attention_modes import ATTENTION_MODES, TRAINED
from .emotions import EMOTIONS, INTENSITY_LEVELS

READABLE_FORMAT_VERSIONS = (1, 2)
# inference.audio_framing: "whole_clip" normalises every sample of the clip (our models);
# "whole_frames" first cuts the audio to whole output frames, as the official EMOTE code does.
WHOLE_CLIP = "whole_clip"
WHOLE_FRAMES = "whole_frames"
AUDIO_FRAMINGS = (WHOLE_CLIP, WHOLE_FRAMES)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def default_model_dir() -> Path:
    """Where the bundled model lives: model_runtime/default_model/, or $EMOTE_DEFAULT_MODEL_DIR
    (a pipeline can point "default" at its own checkpoint folder)."""
    override = os.environ.get("EMOTE_DEFAULT_MODEL_DIR")
    return Path(override) if override else Path(__file__).resolve().parent / "default_model"


def default_arch(output_dim: int, n_identities: int) -> dict:
    """The log-mel architecture of our bundled model (~2 M parameters, >100x real time on CPU)."""
    return {
        "audio_encoder": "logmel", "output_dim": int(output_dim),
        "cond_dim": len(EMOTIONS) + INTENSITY_LEVELS + int(n_identities),
        "sample_rate": 16000, "n_fft": 512, "win": 400, "hop": 320, "n_mels": 80,
        "fmin": 0.0, "fmax": 8000.0, "logmel_hidden": 128, "logmel_dilations": [1, 2],
        "logmel_channels": 256, "logmel_dilations_25": [1, 2], "logmel_shift": 5.0,
        "logmel_scale": 4.0,
        "seq_dim": 128, "style_dim": 128, "n_heads": 8, "ff_dim": 256, "dropout": 0.25,
        "period": 30, "decoder_layers": 1,
        "latent_dim": 128, "flint_quant": 3, "flint_heads": 8, "flint_ff": 384, "flint_layers": 1,
    }


def required_format_version(arch: dict, inference: dict | None) -> int:
    """1 unless the config uses a format-2 setting (non-trained attention, an inference block)."""
    return 2 if inference or arch.get("attention", TRAINED) != TRAINED else 1


def make_config(arch: dict, exp_names, identities, head_id: str, provenance: dict | None = None,
                inference: dict | None = None) -> dict:
    """A complete config.json dict around an architecture (`inference`: see module doc)."""
    config = {
        "format_version": required_format_version(arch, inference),
        "architecture": dict(arch),
        "fps": 25,
        "sample_rate": 16000,
        "conditions": {"emotions": list(EMOTIONS), "intensity_levels": INTENSITY_LEVELS,
                       "identities": [str(i) for i in identities]},
        "output": {"head_id": str(head_id), "exp_names": [str(e) for e in exp_names],
                   "jaw": "axis_angle"},
        "provenance": dict(provenance or {}),
    }
    if inference:
        config["inference"] = dict(inference)
    return config


def tiny_config(exp_names, identities=("default",), audio_encoder: str = "logmel",
                head_id: str = "flame2020") -> dict:
    """A SMALL random-weight architecture (a few thousand parameters) for tests across the project."""
    n_id = len(identities)
    arch = {
        "audio_encoder": audio_encoder, "output_dim": len(exp_names) + 3,
        "cond_dim": len(EMOTIONS) + INTENSITY_LEVELS + n_id,
        "n_mels": 16, "fmax": 8000.0, "logmel_hidden": 8, "logmel_dilations": [1, 2],
        "logmel_channels": 8, "logmel_dilations_25": [1],
        "seq_dim": 8, "style_dim": 8, "n_heads": 2, "ff_dim": 16, "dropout": 0.0, "period": 30,
        "decoder_layers": 1, "latent_dim": 8, "flint_quant": 3, "flint_heads": 2, "flint_ff": 16,
        "flint_layers": 1,
    }
    if audio_encoder == "wav2vec2":
        arch["wav2vec2_config"] = {
            "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 32, "conv_dim": [8] * 7, "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 2, "layerdrop": 0.0}
    return make_config(arch, exp_names, identities, head_id,
                       {"source": "tiny random test model (model_runtime.checkpoints.tiny_config)"})


def _check_config(config: dict, where: str) -> None:
    """Raise bad_checkpoint when the config lacks what build_model and inference need."""
    def bad(msg):
        raise EmoteInputError("bad_checkpoint", f"The model's config.json ({where}) is invalid: "
                              f"{msg}. Re-export or re-convert the model.")
    if not isinstance(config, dict):
        bad("it is not a JSON object")
    version = config.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        bad(f"format_version is {version!r}, this runtime reads "
            f"{' and '.join(map(str, READABLE_FORMAT_VERSIONS))}; update the add-on")
    for key in ("architecture", "conditions", "output"):
        if not isinstance(config.get(key), dict):
            bad(f"'{key}' is missing")
    arch, cond, out = config["architecture"], config["conditions"], config["output"]
    _check_format2(config, bad)
    for key in ("audio_encoder", "output_dim", "cond_dim"):
        if key not in arch:
            bad(f"architecture.{key} is missing")
    ids = cond.get("identities")
    if not isinstance(ids, list) or not ids:
        bad("conditions.identities must list at least one identity")
    if list(cond.get("emotions", [])) != list(EMOTIONS):
        bad(f"conditions.emotions must be {list(EMOTIONS)}")
    n_cond = len(EMOTIONS) + int(cond.get("intensity_levels", INTENSITY_LEVELS)) + len(ids)
    if int(arch["cond_dim"]) != n_cond:
        bad(f"architecture.cond_dim is {arch['cond_dim']} but the conditions need {n_cond}")
    exp_names = out.get("exp_names")
    if not isinstance(exp_names, list) or int(arch["output_dim"]) != len(exp_names) + 3:
        bad("architecture.output_dim must equal len(output.exp_names) + 3 (jaw)")
    if out.get("jaw") != "axis_angle":
        bad("output.jaw must be 'axis_angle'")


def inference_settings(config: dict) -> dict:
    """The config's `inference` block with its defaults filled in (format-1 folders have none):
    `audio_framing` (WHOLE_CLIP) and `single_pass_frames` (None = the runtime's window)."""
    block = config.get("inference") or {}
    return {"audio_framing": block.get("audio_framing", WHOLE_CLIP),
            "single_pass_frames": block.get("single_pass_frames")}


def _check_format2(config: dict, bad) -> None:
    arch = config["architecture"]
    attention = arch.get("attention", TRAINED)
    if attention not in ATTENTION_MODES:
        bad(f"architecture.attention is {attention!r}; this runtime supports "
            f"{' and '.join(map(repr, ATTENTION_MODES))}")
    block = config.get("inference")
    if block is not None:
        if not isinstance(block, dict):
            bad("'inference' must be an object")
        unknown = sorted(set(block) - {"audio_framing", "single_pass_frames"})
        if unknown:
            bad(f"inference has unknown settings {unknown}")
        framing = block.get("audio_framing", WHOLE_CLIP)
        if framing not in AUDIO_FRAMINGS:
            bad(f"inference.audio_framing is {framing!r}; this runtime supports "
                f"{' and '.join(map(repr, AUDIO_FRAMINGS))}")
        frames = block.get("single_pass_frames")
        if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool)
                                   or frames < 128 or frames % 8):
            bad(f"inference.single_pass_frames is {frames!r}; it must be a whole number of "
                "frames, at least 128 and a multiple of 8")
    needed = required_format_version(arch, block)
    if config["format_version"] < needed:
        bad(f"it uses format-{needed} settings (architecture.attention {attention!r}, "
            f"inference {block!r}) but says format_version {config['format_version']}")


def build_model(config: dict):
    """A TalkingHead with random weights for `config["architecture"]` (checked first)."""
    from .networks.talking_head import TalkingHead

    _check_config(config, "given config")
    return TalkingHead(config["architecture"])


def is_checkpoint_folder(folder) -> bool:
    """Whether `folder` holds one of our checkpoints (a config.json with our format fields)."""
    try:
        with open(Path(folder) / CONFIG_NAME, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and "format_version" in config \
        and isinstance(config.get("architecture"), dict)


def check_output_folder(folder, replace: bool = True, force_hint: str = "") -> None:
    """Refuse (before anything is written) a destination that would cost the user files.

    A missing or empty folder is fine. A folder holding one of our checkpoints is fine when
    `replace` (only config.json and model.safetensors are then replaced; other files stay);
    otherwise it is refused with `force_hint`. Any other non-empty folder is `folder_not_ours`.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EmoteInputError("folder_not_ours", f"{folder} is a file; a checkpoint is a folder. "
                              "Give the path of a new folder.")
    try:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:
        raise EmoteInputError("unwritable_output", f"Cannot look inside {folder} ("
                              f"{exc.strerror or exc}). Choose a folder you can write to."
                              ) from exc
    if not present:
        return
    if is_checkpoint_folder(folder):
        if replace:
            return
        raise EmoteInputError("folder_not_ours", f"{folder} already holds a checkpoint. "
                              f"{force_hint or 'Choose a new folder.'}")
    shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
    raise EmoteInputError(
        "folder_not_ours",
        f"The folder {folder} already holds files that are not an EMOTE checkpoint ({shown}); "
        f"writing a checkpoint there could destroy them, so nothing was written. Give a new or "
        f"empty folder, for example {folder / 'emote_model'}.")


def save_checkpoint(model, config: dict, folder, replace: bool = True,
                    force_hint: str = "") -> Path:
    """Write config.json + model.safetensors into `folder`; returns it.

    Each file goes to a temporary name beside it and is renamed over the old one only when
    written (weights first, then the config), so a failed or killed save leaves the old
    checkpoint. Files of ours are the only ones replaced; a folder holding anything else is
    refused (check_output_folder), so the user's files are never deleted.
    """
    from safetensors.torch import save

    from .safe_write import write_bytes, write_text

    _check_config(config, "to save")
    folder = Path(folder)
    check_output_folder(folder, replace, force_hint)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes(folder / WEIGHTS_NAME, save(state, metadata={"format": "pt"}))
    write_text(folder / CONFIG_NAME, json.dumps(config, indent=1))
    return folder


def _resolve(folder_or_default) -> Path:
    if str(folder_or_default) == "default":
        folder = default_model_dir()
        if not (folder / CONFIG_NAME).is_file():
            raise EmoteInputError(
                "no_default_model",
                "No default model is installed (expected model_runtime/default_model/ with "
                "config.json and model.safetensors). Choose a checkpoint folder in the model "
                "field, convert the official EMOTE weights with 'python -m model_runtime "
                "convert-official', or reinstall the extension to get the bundled model.")
        return folder
    folder = Path(folder_or_default)
    if not folder.exists():
        raise EmoteInputError("missing_file", f"Model folder not found: {folder}. Check the path "
                              "or use 'default'.")
    if not folder.is_dir():
        raise EmoteInputError("bad_checkpoint", f"{folder} is a file, but a model is a folder "
                              "holding config.json and model.safetensors. Choose the folder.")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise EmoteInputError("missing_file", f"The model folder {folder} has no {name}. "
                                  "A model folder holds config.json and model.safetensors; "
                                  "re-export or re-convert the model.")
    return folder


def load_config(folder_or_default) -> dict:
    """Read and check config.json of a checkpoint folder (or of the default model)."""
    folder = _resolve(folder_or_default)
    try:
        with open(folder / CONFIG_NAME, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmoteInputError("bad_checkpoint", f"Cannot read {folder / CONFIG_NAME}: {exc}. "
                              "Re-export or re-convert the model.") from exc
    _check_config(config, str(folder / CONFIG_NAME))
    return config


def load_state_strict(model, state: dict, where: str) -> None:
    """Load `state` into `model`; any missing/unexpected key or shape mismatch is bad_checkpoint."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f" (and {len(items) - 8} more)" if len(items) > 8 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise EmoteInputError("bad_checkpoint", f"The weights in {where} do not fit the model's "
                              f"architecture ({'; '.join(problems)}). The checkpoint is damaged "
                              "or was saved by a different version; re-export or re-convert it.")
    model.load_state_dict(state, strict=True)


def load_checkpoint(folder_or_default):
    """(model in eval mode, config) from a checkpoint folder or "default"; strict about keys."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = _resolve(folder_or_default)
    config = load_config(folder)
    model = build_model(config)
    try:
        state = load_file(str(folder / WEIGHTS_NAME))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EmoteInputError("bad_checkpoint", f"Cannot read {folder / WEIGHTS_NAME}: {exc}. "
                              "The file is damaged; re-export or re-convert the model.") from exc
    load_state_strict(model, state, str(folder / WEIGHTS_NAME))
    model.eval()
    return model, config
