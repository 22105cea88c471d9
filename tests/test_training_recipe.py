"""The one training recipe (model_runtime/training/recipe.py): it holds exactly what the shipped
model was trained with, the command line's defaults come from it and override it, and the
`--data` run builds the corpus with the same commands the shell script used to run.

The literal values below are the record of what shipped: the flags `scripts/train_default_model.sh`
passed and the defaults `train_default.py` held at commit 731cefc (before the recipe module).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emote.model_runtime.training import plan as plan_module
from emote.model_runtime.training import train_default
from emote.model_runtime.training.recipe import FINE_TUNE_CORPUS, SHIPPED, STAGES

ROOT = Path(__file__).resolve().parents[1]

# scripts/train_default_model.sh at 731cefc: the corpus calls and the train_default flags
SCRIPT_CORPUS = [["--hours", "0.5", "--seed", "0", "--asterisk"], ["--hours", "1.0", "--seed", "1"]]
SCRIPT_FLAGS = {"game_copies": 2, "minutes_budget": 105.0, "emotion": 3.0, "width": 1.5,
                "gap": 2.0, "closed": 16.0}
# train_default.py's module constants and option defaults at 731cefc
OLD_CPU_STEPS = {"flint": 1500, "stage1": 3000, "lip_reader": 800, "emotion_classifier": 600,
                 "stage2": 2200}
OLD_TIME_SHARE = {"flint": 0.11, "stage1": 0.34, "lip_reader": 0.06, "emotion_classifier": 0.05,
                  "stage2": 0.44}
OLD_BATCH = {"flint": 32, "stage1": 16, "lip_reader": 32, "emotion_classifier": 32, "stage2": 12}
OLD_LR = {"flint": 1e-3, "stage1": 5e-4, "lip_reader": 1e-3, "emotion_classifier": 1e-3,
          "stage2": 2e-4}


def _plan(argv):
    return plan_module.make_plan(plan_module.parse_args(argv), argv)


def test_the_scripts_command_resolves_to_what_the_old_script_passed(tmp_path):
    data = tmp_path / "data"
    plan = _plan(["--data", str(data), "--out", str(tmp_path / "m"), "--resume",
                  "--device", "cpu"])
    r = plan.recipe
    assert [["--hours", f"{c.hours}", "--seed", f"{c.seed}"] + (["--asterisk"] * c.asterisk)
            for c in r.corpus] == SCRIPT_CORPUS
    assert r.use_game_corpus and r.game_copies == SCRIPT_FLAGS["game_copies"]
    assert r.minutes_budget == SCRIPT_FLAGS["minutes_budget"]
    assert r.stage2_weights.as_dict() == {"vertex": 1.0, "lip": 2.0, "emotion": 3.0, "gap": 2.0,
                                          "width": 1.5, "closed": 16.0}
    assert r.cpu_steps() == OLD_CPU_STEPS and r.time_shares() == OLD_TIME_SHARE
    assert r.batches() == OLD_BATCH and r.learning_rates() == OLD_LR
    assert (r.gpu_steps_scale, r.window_frames, r.flint_window_frames) == (6, 64, 32)
    assert (r.teacher_variants, r.seed, r.flint_kl_weight) == (8, 0, 1e-3)
    assert (r.stage1_gap_weight, r.stage1_width_weight, r.perceptual_hidden) == (0.5, 0.0, 128)
    # the script's folders: DATA/corpus and DATA/train_run (DATA/train_run_tts_only)
    assert plan.corpus == data / "corpus" and plan.work == data / "train_run"
    assert plan.cache == data / "train_run" / "cache.npz" and plan.steps == OLD_CPU_STEPS
    tts = _plan(["--data", str(data), "--tts-only", "--device", "cpu"])
    assert tts.work == data / "train_run_tts_only" and not tts.recipe.use_game_corpus
    assert not _plan(["--data", str(data), "--no-game"]).recipe.use_game_corpus


def _assert_record_is(p: dict, r) -> None:
    """One phase's training record `p` holds the settings of recipe `r`."""
    assert p["batch"] == r.batches() and p["lr"] == r.learning_rates()
    assert p["loss_weights_stage2"] == r.stage2_weights.as_dict()
    assert p["window_frames"] == r.window_frames and p["cache_variants"] == r.teacher_variants
    # a fine-tune trains these three, each until its steps or its share of the budget ended
    assert set(p["steps"]) == {"lip_reader", "emotion_classifier", "stage2"}
    for k, n in p["steps"].items():
        assert 0 < n <= r.cpu_steps()[k]
    stop = r.stages["stage2"].stop_at
    if stop:  # stopped early on purpose, on the schedule of all its steps
        assert p["steps"]["stage2"] == stop and p["planned_steps"]["stage2"] == r.cpu_steps()["stage2"]
    else:
        assert p["steps"]["stage2"] >= 0.8 * r.cpu_steps()["stage2"]
    if "--fine-tune " in p["command"]:  # the recipe's own phase: its numbers come from it
        assert p["resolved_recipe"]["minutes_budget"] == r.minutes_budget
    else:  # earlier phases spelled every number out on the command line
        assert f"--minutes-budget {r.minutes_budget:g} " in p["command"]
        assert f"--closure-weight {r.stage2_weights.closed:g}" in p["command"]
    # stage 2's speaker variety and upper-face term (records older than them had none)
    resolved = p.get("resolved_recipe", {})
    for key, off in (("speaker_balance", 0.0), ("feature_augment", False),
                     ("speaker_adversary", 0.0), ("upper_face", 0.0), ("flint_lr_scale", 0.0),
                     ("mouth_emotion", 0.0), ("encoder_lr_scale", 1.0),
                     ("use_sky_corpus", False)):
        assert resolved.get(key, off) == getattr(r, key), key


def test_recipe_matches_the_shipped_checkpoints_record():
    """The shipped checkpoint is the base, then each fine-tune in turn: every phase's record
    (the shipped one and the init_from chain inside it) holds that phase's recipe."""
    p = json.loads((ROOT / "model_runtime/default_model/config.json").read_text())["provenance"]
    phases = [p]
    while "init_from" in phases[-1]:
        phases.append(phases[-1]["init_from"]["provenance"])
    base, *fine = phases[::-1]
    assert len(fine) == len(SHIPPED.fine_tunes)
    for n, rec in enumerate(fine, 1):
        _assert_record_is(rec, SHIPPED.fine_tune(n))
        assert rec["trained_on"]["heldout_utterances"] > 0  # validated on held-out speakers
        assert set(rec["trained_on"]["sources"]) == {"asterisk", "game"}
    r = SHIPPED
    assert base["batch"] == r.batches() and base["lr"] == r.learning_rates()
    assert base["loss_weights_stage2"] == r.stage2_weights.as_dict()
    assert base["flint_kl_weight"] == r.flint_kl_weight
    assert base["gap_weight_stage1"] == r.stage1_gap_weight
    assert base["width_weight_stage1"] == r.stage1_width_weight
    # every stage ran its CPU steps except FLINT, which its time share ended first
    assert {k: v for k, v in base["steps"].items() if k != "flint"} == {
        k: v for k, v in r.cpu_steps().items() if k != "flint"}
    assert base["steps"]["flint"] < r.stages["flint"].cpu_steps
    assert "--minutes-budget 105 " in base["command"] and "--closure-weight 16" in base["command"]


def test_fine_tune_phases_resolve_their_folders_and_settings(tmp_path):
    data = tmp_path / "data"
    one = _plan(["--data", str(data), "--fine-tune", "1", "--device", "cpu"])
    two = _plan(["--data", str(data), "--fine-tune", "2", "--device", "cpu"])
    assert one.init_from == str(data / "base_model")
    assert two.init_from == str(data / "fine_tune_1_model")
    assert (two.corpus, two.work) == (data / "asterisk", data / "fine_tune_2_run")
    for plan, f in ((one, SHIPPED.fine_tunes[0]), (two, SHIPPED.fine_tunes[1])):
        assert plan.recipe.minutes_budget == f.minutes_budget
        assert plan.steps["stage2"] == f.stage2_steps
        assert plan.recipe.stage2_weights.closed == f.closed
        assert plan.recipe.corpus == (FINE_TUNE_CORPUS,) and plan.recipe.use_game_corpus
        # everything else is the base's recipe
        assert plan.recipe.stage2_weights.gap == SHIPPED.stage2_weights.gap
        assert plan.steps["lip_reader"] == SHIPPED.stages["lip_reader"].cpu_steps
    assert one.stop_at == {} and two.stop_at == {"stage2": SHIPPED.fine_tunes[1].stage2_stop}
    assert _plan(["--data", str(data), "--fine-tune", "2", "--stop-at", "stage2=9"]).stop_at == {
        "stage2": 9}
    with pytest.raises(SystemExit, match="--stop-at"):
        _plan(["--stop-at", "stage9=3"])
    # an option still overrides one value
    own = _plan(["--data", str(data), "--fine-tune", "2", "--closure-weight", "5",
                 "--minutes-budget", "7", "--device", "cpu"])
    assert own.recipe.stage2_weights.closed == 5 and own.recipe.minutes_budget == 7
    base = _plan(["--data", str(data), "--device", "cpu"])
    assert base.recipe.stage2_weights.closed == SHIPPED.stage2_weights.closed
    assert base.recipe.minutes_budget == SHIPPED.minutes_budget and base.init_from is None
    for bad in (["--fine-tune", "1"], ["--data", str(data), "--fine-tune", "1", "--no-game"]):
        with pytest.raises(SystemExit, match="--fine-tune trains on the game"):
            _plan(bad)
    n = len(SHIPPED.fine_tunes) + 1
    with pytest.raises(SystemExit, match=f"--fine-tune {n}: fine-tune {n}: the recipe has {n - 1}"):
        _plan(["--data", str(data), "--fine-tune", str(n)])


def test_fine_tune_builds_the_asterisk_prompts_and_needs_the_game(tmp_path, monkeypatch):
    from emote.model_runtime.training import queen_data

    builders = _Builders()
    monkeypatch.setattr(train_default, "_run_module", builders)
    data = tmp_path / "data"
    monkeypatch.setattr(queen_data, "QUEEN_1C", tmp_path / "not_installed.1c")
    plan = _plan(["--data", str(data), "--fine-tune", "1", "--device", "cpu"])
    with pytest.raises(SystemExit, match="apt-get install flight-of-the-amazon-queen"):
        train_default.build_corpora(plan)
    assert builders.calls == []  # refused before building anything
    game_file = tmp_path / "queen.1c"
    game_file.write_bytes(b"")
    monkeypatch.setattr(queen_data, "QUEEN_1C", game_file)
    plan = _plan(["--data", str(data), "--fine-tune", "1", "--device", "cpu"])
    train_default.build_corpora(plan)
    assert builders.calls == [
        ("model_runtime.training.corpus",
         ["--out", str(data / "asterisk"), "--hours", "0.0", "--seed", "0", "--asterisk"], 0),
        ("model_runtime.training.game_corpus", ["--out", str(data / "queen_corpus")], 10)]
    assert plan.extra_corpora == [data / "queen_corpus"]


def test_the_script_runs_the_base_then_each_fine_tune():
    text = (ROOT / "scripts/train_default_model.sh").read_text()
    assert '--no-game --out "$DATA/base_model"' in text
    assert '--fine-tune "$n"' in text and "SHIPPED.fine_tunes" in text


def test_options_default_to_the_recipe_and_override_one_value_each(capsys):
    args = plan_module.parse_args([])
    assert plan_module.resolve_recipe(args).stage2_weights == SHIPPED.stage2_weights
    r = plan_module.resolve_recipe(plan_module.parse_args(
        ["--emotion-weight", "1", "--steps", "stage2=5", "--seed", "3", "--game-copies", "0"]))
    assert r.stage2_weights.emotion == 1.0 and r.stage2_weights.gap == SHIPPED.stage2_weights.gap
    assert r.stages["stage2"].cpu_steps == 5 and r.stages["stage1"] == SHIPPED.stages["stage1"]
    assert (r.seed, r.game_copies) == (3, 0)
    # without --data the run builds no corpus, and its record says so
    assert r.corpus == () and not r.use_game_corpus
    with pytest.raises(SystemExit) as exc:
        plan_module.parse_args(["--help"], train_default.__doc__)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--no-game" in text and "--data" in text and "(default: 3.0)" in text


class _Builders:
    """Stands in for the corpus builders: records each command and makes its output folder."""

    def __init__(self):
        self.calls = []

    def __call__(self, module, args, nice=0):
        self.calls.append((module, args, nice))
        Path(args[args.index("--out") + 1]).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("game_installed", [True, False])
def test_data_run_builds_the_corpus_with_the_scripts_commands(tmp_path, monkeypatch, capsys,
                                                              game_installed):
    from emote.model_runtime.training import queen_data

    game_file = tmp_path / "queen.1c"
    if game_installed:
        game_file.write_bytes(b"")
    monkeypatch.setattr(queen_data, "QUEEN_1C", game_file)
    builders = _Builders()
    monkeypatch.setattr(train_default, "_run_module", builders)
    data = tmp_path / "data"
    plan = _plan(["--data", str(data), "--device", "cpu"])
    train_default.build_corpora(plan)
    corpus = ["model_runtime.training.corpus", ["--out", str(data / "corpus")]]
    expected = [(corpus[0], corpus[1] + a, 0) for a in SCRIPT_CORPUS]
    if game_installed:
        expected.append(("model_runtime.training.game_corpus",
                         ["--out", str(data / "queen_corpus")], 10))
    assert builders.calls == expected
    assert plan.extra_corpora == ([data / "queen_corpus"] if game_installed else [])
    assert plan.recipe.use_game_corpus == game_installed  # the record tells what was used
    if not game_installed:
        assert "flight-of-the-amazon-queen is not installed" in capsys.readouterr().out
    # a rerun finds every part done and builds nothing again
    builders.calls.clear()
    again = _plan(["--data", str(data), "--device", "cpu"])
    train_default.build_corpora(again)
    assert builders.calls == [] and again.extra_corpora == plan.extra_corpora
    # --no-game never builds or adds the game corpus
    no_game = _plan(["--data", str(tmp_path / "other"), "--no-game", "--device", "cpu"])
    train_default.build_corpora(no_game)
    assert [c[0] for c in builders.calls] == [corpus[0]] * 2 and no_game.extra_corpora == []


def test_a_failed_corpus_builder_stops_the_run_and_names_the_command(tmp_path):
    with pytest.raises(SystemExit, match="model_runtime.training.no_such_module"):
        train_default._run_module("model_runtime.training.no_such_module", ["--out", "x"])


def test_every_stage_of_the_recipe_is_trained():
    assert tuple(SHIPPED.stages) == STAGES
    assert sum(SHIPPED.time_shares().values()) == pytest.approx(1.0)


def test_data_run_builds_the_corpus_before_the_cache(tmp_path, monkeypatch):
    from emote.model_runtime.heads.head_model import save_head
    from emote.model_runtime.training import queen_data
    from emote.model_runtime.training.feature_cache import load_cache
    from tests.test_training_smoke import pick_head, write_corpus

    monkeypatch.setattr(queen_data, "QUEEN_1C", tmp_path / "not_installed.1c")
    calls = []

    def tiny_corpus_builder(module, args, nice=0):  # the tiny synthetic corpus stands in
        calls.append(module)
        out = Path(args[args.index("--out") + 1])
        if not out.exists():
            write_corpus(out)

    monkeypatch.setattr(train_default, "_run_module", tiny_corpus_builder)
    save_head(pick_head(), tmp_path / "head.npz")
    data = tmp_path / "data"
    assert train_default.main(["--data", str(data), "--out", str(tmp_path / "model"),
                               "--device", "cpu", "--threads", "1", "--smoke", "--variants", "2",
                               "--head", str(tmp_path / "head.npz"), "--build-cache-only"]) == 0
    assert calls == ["model_runtime.training.corpus"] * 2
    meta = load_cache(data / "train_run" / "cache.npz").meta
    assert meta["corpus"]["corpora"] == [str(data / "corpus")]
    assert meta["corpus"]["game_copies"] == SHIPPED.game_copies
