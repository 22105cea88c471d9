"""The model card renders a checkpoint's training phases and says what speech it learned from."""

from __future__ import annotations

from emote.model_runtime.training import model_card
from emote.model_runtime.training.speaker_split import load_heldout


def _record(command: str, minutes: dict, closure: float, voices: dict, parent=None) -> dict:
    rec = {"command": command, "git_commit": "abc1234", "date": "2026-12-02", "minutes": minutes,
           "metrics": {"stage2": {"val_closure_recall": closure}},
           "trained_on": {"voices": voices}}
    if parent is not None:
        rec["init_from"] = {"folder": "x", "provenance": parent}
    return rec


def test_phases_are_listed_oldest_first_with_their_commands():
    held = sorted(load_heldout()[0])
    base = _record("train base", {"stage1": 30.0, "stage2": 40.0}, 0.70, {"flite:slt": 5})
    one = _record("train --fine-tune 1", {"stage2": 35.0}, 0.58, {"queen:joe": 9}, base)
    game_voices = {"queen:joe": 9, "queen:bob": 3, "queen:unknown": 2, held[0]: 4}
    two = _record("train --fine-tune 2", {"stage2": 60.5}, 0.66, game_voices, one)
    assert [p["command"] for p in model_card.phases(two)] == [
        "train base", "train --fine-tune 1", "train --fine-tune 2"]
    text = model_card.render({"provenance": {**two, "trained_on": {"voices": game_voices}}})
    rows = [line for line in text.splitlines() if line.startswith("| base")
            or line.startswith("| fine-tune")]
    assert len(rows) == 3 and "`train base`" in rows[0] and "| 70.0 | 0.700 |" in rows[0]
    assert "`train --fine-tune 2`" in rows[2] and "| 60.5 | 0.660 |" in rows[2]
    assert "last of 3 training runs" in text
    # learned from: joe and bob; the held-out character and unlabelled clips only validate
    assert "recorded voices of 2 game characters" in text
    assert "No head pose" not in text and "model_runtime/alive.py" in text


def test_a_single_run_has_no_phases_table_and_says_it_is_mostly_synthetic():
    text = model_card.render({"provenance": _record("train", {"stage2": 1.0}, 0.5,
                                                    {"flite:slt": 5})})
    assert "## Phases" not in text and "trained mostly on synthetic (TTS) speech" in text


def test_recipe_section_names_the_stage2_options_a_phase_used():
    import json
    from pathlib import Path

    cfg = json.loads((Path(__file__).resolve().parents[1]
                      / "model_runtime/default_model/config.json").read_text())
    p = cfg["provenance"]
    r = dict(p["resolved_recipe"])
    text = model_card.render(cfg)
    on = [k for k in ("speaker_balance", "feature_augment", "speaker_adversary", "upper_face",
                      "flint_lr_scale", "mouth_emotion") if r.get(k)]
    assert ("Stage 2 also:" in text) == bool(on)
    if r.get("flint_lr_scale"):
        assert "not frozen, unlike EMOTE" in text
    for k in on:
        r[k] = 0
    r["encoder_lr_scale"] = 1.0
    plain = model_card.render({**cfg, "provenance": {**p, "resolved_recipe": r}})
    assert "Stage 2 also:" not in plain and "not frozen" not in plain
    frozen = model_card.render({**cfg, "provenance": {**p, "resolved_recipe": {
        **r, "encoder_lr_scale": 0.0}}})
    assert "Stage 2 also: the audio encoder frozen." in frozen


def test_steel_sky_voices_bring_their_licence_and_cast():
    voices = {"queen:joe": 9, "queen:bob": 3, "sky:s2": 7}
    text = model_card.render({"provenance": _record("train", {"stage2": 1.0}, 0.5, voices)})
    assert "Beneath a Steel Sky speech: " in text and "Revolution Software" in text
    assert "2 game characters and the cast of Beneath a Steel Sky" in text
    plain = model_card.render({"provenance": _record("train", {"stage2": 1.0}, 0.5,
                                                     {"queen:joe": 9})})
    assert "Steel Sky" not in plain
