"""The official cfg.yaml checks: EMOTE v1/v2 and FLINT settings the runtime implements pass and give
the values the conversion uses; every setting that would change the architecture is refused with
its key, its value and what the runtime supports."""

from __future__ import annotations

import pytest
import torch

from emote.model_runtime.convert_official import official_arch, official_sizes
from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.official_cfg import check_flint_cfg, check_talking_head_cfg
from tests.helpers.official_emote import DELETE, flint_cfg, official_shapes, talking_head_cfg

SIZES_V2 = {"output_dim": 103, "cond_dim": 43, "style_dim": 128, "seq_dim": 128, "ff_dim": 256,
            "decoder_layers": 1, "latent_dim": 128, "flint_quant": 3, "flint_ff": 384,
            "flint_layers": 1}
SIZES_V1 = {**SIZES_V2, "output_dim": 53}
SD = "model__sequence_decoder__"
ST = SD + "style_embedding__"


@pytest.mark.parametrize("n_exp,sizes", [(100, SIZES_V2), (50, SIZES_V1)], ids=["v2", "v1"])
def test_official_settings_pass(tmp_path, n_exp, sizes):
    values = check_talking_head_cfg(talking_head_cfg(tmp_path / "cfg.yaml", n_exp=n_exp), sizes)
    assert values == {"nhead": 8, "period": 30, "dropout": 0.25, "n_identities": 32,
                      "n_intensities": 3, "n_emotions": 8}
    assert check_flint_cfg(flint_cfg(tmp_path / "f.yaml", n_exp=n_exp), sizes) == \
        {"flint_nhead": 8}


def test_heads_and_period_come_from_the_cfg(tmp_path):
    cfg = talking_head_cfg(tmp_path / "cfg.yaml", **{SD + "nhead": 4, SD + "period": 25})
    values = check_talking_head_cfg(cfg, SIZES_V2)
    values.update(check_flint_cfg(flint_cfg(tmp_path / "f.yaml",
                                            model__sequence_decoder__nhead=2), SIZES_V2))
    arch = official_arch(SIZES_V2, values, "official-demo")
    assert (arch["n_heads"], arch["period"], arch["flint_heads"]) == (4, 25, 2)
    assert arch["attention"] == "official-demo"


# (dotted override, value, text the refusal must contain)
TALKING_HEAD_REFUSALS = [
    (SD + "temporal_bias_type", "faceformer", "temporal_bias_type is 'faceformer'"),
    (SD + "temporal_bias_type", DELETE, "temporal_bias_type is 'none'"),
    (SD + "temporal_bias_type", "alibi_future", "'faceformer_future'"),
    (SD + "positional_encoding__type", "PeriodicPositionalEncoding",
     "positional_encoding.type is 'PeriodicPositionalEncoding'"),
    (SD + "post_bug_fix", False, "post_bug_fix is False"),
    (SD + "post_bug_fix", DELETE, "post_bug_fix is False"),
    (SD + "activation", "relu", "activation is 'relu'"),
    (SD + "style_op", "add", "style_op is 'add'"),
    (SD + "style_op", DELETE, "style_op is 'add'"),
    (SD + "squash_type", "conv", "squash_type is 'conv'"),
    (SD + "squash_before", True, "squash_before is True"),
    (SD + "squash_after", False, "squash_after is False"),
    (SD + "rotation_representation", "6d", "rotation_representation is '6d'"),
    (SD + "nhead", 6, "nhead is 6"),
    (SD + "num_layers", 2, "num_layers is 2"),
    (SD + "feature_dim", 64, "feature_dim is 64"),
    (SD + "flame__n_exp", 50, "flame.n_exp is 50"),
    (ST + "n_intensities", 5, "n_intensities is 5"),
    (ST + "n_expression", 7, "n_expression is 7"),
    (ST + "n_identities", 30, "n_identities is 41"),
    (ST + "use_shape", True, "use_shape is True"),
    (ST + "gt_expression_intensity", False, "gt_expression_intensity is False"),
    (ST + "use_valence", True, "use_valence is True"),
    (ST + "type", "onehot_linear", "style_embedding.type is 'onehot_linear'"),
    ("model__audio__model_specifier", "facebook/wav2vec2-large-960h-lv60-self",
     "model_specifier is 'facebook/wav2vec2-large-960h-lv60-self'"),
    ("model__audio__target_fps", 30, "target_fps is 30"),
    ("model__audio__with_processor", False, "with_processor is False"),
    ("model__sequence_encoder__type", "simple_transformer_add", "sequence_encoder.type is"),
    (SD + "type", "FaceFormerDecoder", "sequence_decoder.type is 'FaceFormerDecoder'"),
]


@pytest.mark.parametrize("key,value,text", TALKING_HEAD_REFUSALS,
                         ids=[f"{k.split('__')[-1]}={v if v is not DELETE else 'missing'}"
                              for k, v, _ in TALKING_HEAD_REFUSALS])
def test_talking_head_settings_are_refused(tmp_path, key, value, text):
    cfg = talking_head_cfg(tmp_path / "cfg.yaml", **{key: value})
    with pytest.raises(EmoteInputError) as err:
        check_talking_head_cfg(cfg, SIZES_V2)
    assert err.value.kind == "bad_checkpoint"
    msg = err.value.message
    assert text in msg, msg
    if "do not belong together" not in msg:  # a setting refused: it says what is supported
        assert "this runtime implements only" in msg


FLINT_REFUSALS = [
    (SD + "temporal_bias__type", "alibi", "temporal_bias.type is 'alibi'"),
    (SD + "temporal_bias", DELETE, "temporal_bias.type is None"),
    (SD + "positional_encoding__type", "LearnedPositionEmbedding", "LearnedPositionEmbedding"),
    (SD + "activation", "relu", "activation is 'relu'"),
    (SD + "post_conv_proj", {"init": "zeros"}, "post_conv_proj is {'init': 'zeros'}"),
    (SD + "post_transformer_proj", DELETE, "post_transformer_proj is None"),
    (SD + "intermediate_size", 256, "intermediate_size is 256"),
    ("model__sizes__quant_factor", 2, "quant_factor is 2"),
    ("model__sequence_components", {"jaw": "rot", "exp": 100}, "sequence_components is"),
    ("model__rotation_representation", "6d", "rotation_representation is '6d'"),
]


@pytest.mark.parametrize("key,value,text", FLINT_REFUSALS,
                         ids=[k.split("__")[-1] for k, _, _ in FLINT_REFUSALS])
def test_flint_settings_are_refused(tmp_path, key, value, text):
    with pytest.raises(EmoteInputError) as err:
        check_flint_cfg(flint_cfg(tmp_path / "f.yaml", **{key: value}), SIZES_V2)
    assert err.value.kind == "bad_checkpoint" and text in err.value.message, err.value.message


def test_missing_section_says_it_is_not_an_emote_cfg(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("learning: {learning_rate: 0.001}\n")
    with pytest.raises(EmoteInputError) as err:
        check_talking_head_cfg(cfg, SIZES_V2)
    assert "model.sequence_decoder.type is missing" in err.value.message


def test_unknown_output_width_is_refused():
    shapes = official_shapes("emote_v2")
    state = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    assert official_sizes(state, "last.ckpt")["output_dim"] == 103
    key = "sequence_decoder.motion_prior.motion_decoder.cross_smooth_layer.weight"
    state[key] = torch.empty(60, 128, 5, device="meta")
    with pytest.raises(EmoteInputError) as err:
        official_sizes(state, "last.ckpt")
    assert "60 channels" in err.value.message and "103 (EMOTE_v2)" in err.value.message
