"""Read the `cfg.yaml` of an official EMOTE release (talking head, and optionally its FLINT motion
prior) and refuse every setting this runtime does not implement.

The runtime implements one architecture: wav2vec2-base audio (processor normalisation, CNN features
resampled to 25 fps), a linear sequence encoder, the style one-hots [emotion | intensity | identity]
through a linear map concatenated to the audio features, post-norm GELU transformer layers with
the symmetric periodic ALiBi bias and no positional encoding, the decoder on the transformer output
(the fixed version), an 8-frame stack-and-linear squash after it, and FLINT's decoder with
symmetric ALiBi, exp + jaw axis-angle out. A cfg asking for anything else (a causal bias, ReLU,
additive style, another squash, five intensity levels...) would convert into a model that computes
something the weights were not trained for, so each is refused with its key, its value and what is
supported. Keys the official code reads with a default are checked with that default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import EmoteInputError
from .emotions import N_EMOTIONS

N_INTENSITIES = 3  # the runtime's intensity mapping (conditions.intensity_one_hot) has 3 levels
OUTPUT_VERSIONS = {103: "EMOTE_v2", 53: "EMOTE v1"}  # exp (100 / 50) + 3 jaw
WAV2VEC2_BASE = ("facebook/wav2vec2-base-960h", "facebook/wav2vec2-base")
# The official code builds its attention masks for at most 1200 frames (48 s at 25 fps): the
# longest clip it runs in one pass, and so the longest our runtime runs in one pass for it.
OFFICIAL_MAX_FRAMES = 1200
_MISSING = object()


def load_yaml(path, what: str) -> dict:
    """A cfg.yaml as plain data (yaml.safe_load: no tags, nothing executed)."""
    path = Path(path)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"{what} not found: {path}. It lies beside the "
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
    if not isinstance(cfg, dict):
        raise EmoteInputError("bad_checkpoint", f"{path} is not an EMOTE cfg.yaml (no mapping at "
                              "the top).")
    return cfg


class _Cfg:
    """Dotted look-ups with the official defaults, and refusals that name key, value and support."""

    def __init__(self, data: dict, path, kind: str):
        self.data, self.path, self.kind = data, Path(path), kind

    def get(self, dotted: str, default: Any = _MISSING) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise EmoteInputError(
                        "bad_checkpoint", f"{self.path}: the key {dotted} is missing; this is "
                        f"not the cfg.yaml of an official {self.kind} (use the one beside its "
                        "checkpoint).")
                return default
            node = node[part]
        return node

    def refuse(self, dotted: str, value: Any, supported: str) -> EmoteInputError:
        return EmoteInputError(
            "bad_checkpoint", f"{self.path}: {dotted} is {value!r}, but this runtime implements "
            f"only {supported}. Converting it would compute something the weights were not "
            "trained for, so it is refused.")

    def expect(self, dotted: str, allowed: tuple, supported: str, default: Any = _MISSING) -> Any:
        value = self.get(dotted, default)
        if value not in allowed:
            raise self.refuse(dotted, value, supported)
        return value

    def integer(self, dotted: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self.get(dotted, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.refuse(dotted, value, f"a whole number >= {minimum}")
        return value

    def matches(self, dotted: str, value: int, weights_value: int, what: str) -> None:
        if value != weights_value:
            raise EmoteInputError(
                "bad_checkpoint", f"{self.path}: {dotted} is {value}, but the checkpoint's weights "
                f"have {weights_value} ({what}); the cfg.yaml and the .ckpt do not belong "
                "together.")


def _no_positional_encoding(c: _Cfg, dotted: str) -> None:
    pe = c.get(dotted + ".type")
    if pe not in (None, False) and str(pe).lower() != "none":
        raise c.refuse(dotted + ".type", pe, "no positional encoding ('none')")


def check_talking_head_cfg(cfg_yaml, sizes: dict) -> dict:
    """Check the talking head's cfg.yaml against the runtime and the weights' `sizes` (from
    convert_official.official_sizes). Returns the values the conversion takes from it."""
    c = _Cfg(load_yaml(cfg_yaml, "cfg.yaml"), cfg_yaml, "EMOTE talking head")
    sd = "model.sequence_decoder"
    c.expect(sd + ".type", ("BertPriorDecoder",), "'BertPriorDecoder' (EMOTE's decoder)")
    c.expect(sd + ".temporal_bias_type", ("faceformer_future",),
             "'faceformer_future' (symmetric periodic ALiBi over past and future)", "none")
    _no_positional_encoding(c, sd + ".positional_encoding")
    c.expect(sd + ".post_bug_fix", (True,), "True (the decoder reads the transformer's output)",
             False)
    c.expect(sd + ".activation", ("gelu",), "'gelu'")
    c.expect(sd + ".style_op", ("cat",), "'cat' (style features concatenated to the audio "
             "features)", "add")
    c.expect(sd + ".squash_before", (False,), "False (squash after the decoder)", True)
    c.expect(sd + ".squash_after", (True,), "True (squash after the decoder)", False)
    c.expect(sd + ".squash_type", ("stack_linear",), "'stack_linear' (8 frames stacked, one "
             "linear map)", "conv")
    c.expect(sd + ".rotation_representation", ("aa",), "'aa' (jaw as axis-angle)", "aa")
    n_heads = c.integer(sd + ".nhead")
    period = c.integer(sd + ".period")
    d_model = sizes["seq_dim"] + sizes["style_dim"]
    if d_model % n_heads:
        raise c.refuse(sd + ".nhead", n_heads, f"a divisor of the layer width {d_model}")
    c.matches(sd + ".num_layers", c.integer(sd + ".num_layers"), sizes["decoder_layers"],
              "transformer layers")
    c.matches(sd + ".feature_dim", c.integer(sd + ".feature_dim"), sizes["seq_dim"],
              "audio feature width")
    dropout = c.get(sd + ".dropout", 0.0)

    st = sd + ".style_embedding"
    if not isinstance(c.get(st), dict):
        raise c.refuse(st, c.get(st), "a style_embedding mapping of type 'emotion_linear'")
    c.expect(st + ".type", ("emotion_linear",), "'emotion_linear'")
    for flag, want in (("gt_expression_label", True), ("gt_expression_intensity", True),
                       ("gt_expression_identity", True), ("use_video_expression", False),
                       ("use_video_feature", False), ("use_expression", False),
                       ("use_valence", False), ("use_arousal", False),
                       ("use_emotion_feature", False), ("use_shape", False), ("use_bias", True)):
        default = True if flag == "use_bias" else False
        c.expect(f"{st}.{flag}", (want,), f"{want} (the condition is [emotion {N_EMOTIONS} | "
                 f"intensity {N_INTENSITIES} | identity] one-hots)", default)
    n_emotions = c.integer(st + ".n_expression")
    if n_emotions != N_EMOTIONS:
        raise c.refuse(st + ".n_expression", n_emotions, f"{N_EMOTIONS} emotions (EMOTE's order)")
    n_intensities = c.integer(st + ".n_intensities")
    if n_intensities != N_INTENSITIES:
        raise c.refuse(st + ".n_intensities", n_intensities,
                       f"{N_INTENSITIES} intensity levels")
    n_identities = c.integer(st + ".n_identities")
    c.matches(f"{st}.n_expression + n_intensities + n_identities",
              n_emotions + n_intensities + n_identities, sizes["cond_dim"],
              "condition width of sequence_decoder.obj_vector.map")

    n_exp = sizes["output_dim"] - 3
    flame_exp = c.get(sd + ".flame.n_exp", n_exp)
    if flame_exp != n_exp:
        c.matches(sd + ".flame.n_exp", flame_exp, n_exp, "expression outputs")

    au = "model.audio"
    c.expect(au + ".type", ("wav2vec2",), "'wav2vec2'")
    c.expect(au + ".model_specifier", WAV2VEC2_BASE, " or ".join(map(repr, WAV2VEC2_BASE)))
    c.expect(au + ".with_processor", (True,), "True (the clip normalised as wav2vec2's processor "
             "does)", True)
    c.expect(au + ".model_expected_fps", (50,), "50", 50)
    c.expect(au + ".target_fps", (25,), "25 (the runtime's frame rate)", 25)
    se = "model.sequence_encoder"
    c.expect(se + ".type", ("linear",), "'linear'")
    return {"nhead": n_heads, "period": period, "dropout": dropout,
            "n_identities": n_identities, "n_intensities": n_intensities,
            "n_emotions": n_emotions}


def check_flint_cfg(cfg_yaml, sizes: dict) -> dict:
    """Check the FLINT motion prior's cfg.yaml against the runtime and the talking head's copy of
    its decoder (`sizes`). Returns the values the conversion takes from it."""
    c = _Cfg(load_yaml(cfg_yaml, "FLINT cfg.yaml"), cfg_yaml, "FLINT motion prior")
    sd = "model.sequence_decoder"
    c.expect(sd + ".type", ("L2lDecoder",), "'L2lDecoder' (FLINT's decoder)")
    c.expect(sd + ".activation", ("gelu",), "'gelu'")
    _no_positional_encoding(c, sd + ".positional_encoding")
    c.expect(sd + ".temporal_bias.type", ("alibi_future",),
             "'alibi_future' (symmetric ALiBi over past and future)", None)
    c.expect(sd + ".conv_smooth_layer", ("l2l_default",), "'l2l_default'", "l2l_default")
    if not c.get(sd + ".post_transformer_proj", None):
        raise c.refuse(sd + ".post_transformer_proj", c.get(sd + ".post_transformer_proj", None),
                       "a linear map after the transformer")
    c.expect(sd + ".post_conv_proj", (None, False), "none (False)", None)
    n_heads = c.integer(sd + ".nhead")
    if sizes["latent_dim"] % n_heads:
        raise c.refuse(sd + ".nhead", n_heads, f"a divisor of the width {sizes['latent_dim']}")
    c.matches(sd + ".feature_dim", c.integer(sd + ".feature_dim"), sizes["latent_dim"],
              "FLINT width")
    c.matches(sd + ".intermediate_size", c.integer(sd + ".intermediate_size"),
              sizes["flint_ff"], "FLINT feed-forward width")
    c.matches(sd + ".num_layers", c.integer(sd + ".num_layers"), sizes["flint_layers"],
              "FLINT transformer layers")
    c.matches("model.sizes.quant_factor", c.integer("model.sizes.quant_factor"),
              sizes["flint_quant"], "FLINT upsampling stages")
    c.expect("model.rotation_representation", ("aa",), "'aa' (jaw as axis-angle)", "aa")
    components = c.get("model.sequence_components")
    n_exp = sizes["output_dim"] - 3
    if not isinstance(components, dict) or list(components.items()) != [("exp", n_exp),
                                                                          ("jaw", "rot")]:
        raise c.refuse("model.sequence_components", components,
                       f"{{exp: {n_exp}, jaw: rot}} in that order (the output layout)")
    return {"flint_nhead": n_heads}
