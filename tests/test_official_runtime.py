"""What a converted official checkpoint's config asks of the runtime (format 2): the attention mode
for both attention layers, the official audio framing, one pass up to 1200 frames; and that
format-1 folders (ours, older conversions) keep today's behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="wav2vec2 models need the 'transformers' extra")

from emote.model_runtime import checkpoints  # noqa: E402
from emote.model_runtime.checkpoints import (build_model, load_checkpoint, make_config,  # noqa: E402
                                       save_checkpoint, tiny_config)
from emote.model_runtime.conditions import build_condition_track  # noqa: E402
from emote.model_runtime.errors import EmoteInputError  # noqa: E402
from emote.model_runtime.inference import predict, window_starts  # noqa: E402
from emote.model_runtime.official_cfg import OFFICIAL_MAX_FRAMES  # noqa: E402

torch.set_num_threads(1)
EXP = [f"exp{i:03d}" for i in range(5)]
OFFICIAL_INFERENCE = {"audio_framing": "whole_frames", "single_pass_frames": OFFICIAL_MAX_FRAMES}


def _official_tiny(attention="official-demo", inference=OFFICIAL_INFERENCE, seed=0):
    cfg = tiny_config(EXP, audio_encoder="wav2vec2")
    cfg["architecture"]["attention"] = attention
    cfg = make_config(cfg["architecture"], EXP, ["a"], "flame2020", {}, inference=inference)
    torch.manual_seed(seed)
    return build_model(cfg).eval(), cfg


def _audio(n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16000
    return (0.3 * np.sin(2 * np.pi * 2 * t) * rng.standard_normal(n_samples)).astype(np.float32)


def _cond(n: int) -> np.ndarray:
    return build_condition_track(["happy"], [[1.0]], [0.5], 25.0, 25.0, n, 0, 1)


def _calls(model) -> list:
    calls: list = []
    model.register_forward_hook(lambda mod, args, out: calls.append(args[1].shape[1]))
    return calls


def test_attention_mode_reaches_both_attention_layers():
    model, _ = _official_tiny()
    layers = list(model.decoder_layers) + list(model.flint.decoder_transformer)
    assert [layer.attention for layer in layers] == ["official-demo"] * 2
    default = build_model(tiny_config(EXP))
    assert {layer.attention for layer in default.modules() if hasattr(layer, "attention")} == \
        {"trained"}


def test_official_framing_ignores_the_partial_last_frame():
    n = 40
    audio = _audio(n * 640 + 500)
    model, cfg = _official_tiny()
    with_tail = predict(model, cfg, audio, _cond(n))
    cut = predict(model, cfg, audio[:n * 640], _cond(n))
    assert np.array_equal(with_tail, cut)
    # Today's whole-clip framing (format-1 folders) normalises the tail too: every frame moves.
    del cfg["inference"]
    moved = np.abs(predict(model, cfg, audio, _cond(n)) - cut).max(axis=1)
    assert (moved > 1e-5).all()


def test_one_pass_up_to_the_official_length():
    model, cfg = _official_tiny()
    calls = _calls(model)
    predict(model, cfg, _audio(OFFICIAL_MAX_FRAMES * 640), _cond(OFFICIAL_MAX_FRAMES))
    assert calls == [OFFICIAL_MAX_FRAMES]
    calls.clear()
    predict(model, cfg, _audio(1300 * 640), _cond(1300))
    assert len(calls) == 2 and max(calls) <= OFFICIAL_MAX_FRAMES + 7
    calls.clear()
    del cfg["inference"]  # format-1 folders keep today's 504-frame windows
    predict(model, cfg, _audio(600 * 640), _cond(600))
    assert calls == [504, 600 - window_starts(600)[-1]]


def test_seams_beyond_the_official_length_stay_invisible():
    n, win, ov = 1700, OFFICIAL_MAX_FRAMES, 64
    model, cfg = _official_tiny(seed=3)
    audio = _audio(n * 640, seed=3)
    y = predict(model, cfg, audio, _cond(n))
    step = np.linalg.norm(np.diff(y, axis=0), axis=1)  # step[k]: frame k -> k + 1
    starts = window_starts(n, win, ov)
    assert len(starts) == 2
    seams = sorted({starts[1] - 1, starts[1], win - 2, win - 1})
    elsewhere = np.delete(step, seams)
    assert step[seams].max() <= np.percentile(elsewhere, 99)
    # The blend is needed: the two windows really disagree where they overlap.
    first = predict(model, cfg, audio[:win * 640], _cond(win))
    assert np.abs(first[starts[1]:win] - y[starts[1]:win]).max() > 1e-3


def test_format_versions(tmp_path):
    ours = tiny_config(EXP)
    assert ours["format_version"] == 1 and "inference" not in ours
    _, official = _official_tiny(attention="trained")
    assert official["format_version"] == 2
    _, demo = _official_tiny(inference=None)
    assert demo["format_version"] == 2
    model = build_model(official)
    folder = save_checkpoint(model, official, tmp_path / "m")
    assert load_checkpoint(folder)[1]["inference"] == OFFICIAL_INFERENCE


@pytest.mark.parametrize("edit,text", [
    (lambda c: c.update(format_version=1), "says format_version 1"),
    (lambda c: c.update(format_version=3), "this runtime reads 1 and 2"),
    (lambda c: c["architecture"].update(attention="fast"), "architecture.attention is 'fast'"),
    (lambda c: c["inference"].update(audio_framing="tail"), "audio_framing is 'tail'"),
    (lambda c: c["inference"].update(single_pass_frames=1001), "single_pass_frames is 1001"),
    (lambda c: c["inference"].update(hop=3), "unknown settings ['hop']"),
])
def test_bad_format2_settings_are_refused(edit, text):
    _, cfg = _official_tiny()
    cfg = json.loads(json.dumps(cfg))
    edit(cfg)
    with pytest.raises(EmoteInputError) as err:
        checkpoints.build_model(cfg)
    assert err.value.kind == "bad_checkpoint" and text in err.value.message, err.value.message


def test_cli_passes_attention_and_flint_cfg(tmp_path, monkeypatch):
    from emote.model_runtime import cli, convert_official

    seen = {}
    monkeypatch.setattr(convert_official, "convert_official",
                        lambda *a, **kw: seen.update(args=a, kwargs=kw))
    base = ["convert-official", "--ckpt", "last.ckpt", "--cfg", "cfg.yaml", "--flint",
            "flint.ckpt", "--out", str(tmp_path / "out")]
    assert cli.main(base + ["--attention", "official-demo", "--flint-cfg", "f.yaml"]) == 0
    assert seen["kwargs"] == {"attention": "official-demo", "flint_cfg": "f.yaml",
                              "force": False}
    assert cli.main(base + ["--force"]) == 0
    assert seen["kwargs"] == {"attention": "trained", "flint_cfg": None, "force": True}
