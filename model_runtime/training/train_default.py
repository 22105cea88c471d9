"""One command from nothing to the bundled default model, resumable, with progress lines.

    python -m model_runtime.training.train_default --data data [--out model_runtime/default_model]
        [--resume] [--tts-only] [--no-game] [--fine-tune N]
    python -m model_runtime.training.train_default --corpus data/corpus \
        [--extra-corpus data/asterisk] --work data/train_run --out model_runtime/default_model \
        [--device auto] [--minutes-budget 105] [--resume] [--cache-only] [--tts-only] \
        [--stage1-only] [--build-cache-only]

Every number of the recipe comes from `model_runtime/training/recipe.py` (`SHIPPED`); each
option below overrides one of them. Phases, in order (EMOTE's recipe at our scale): with --data,
the corpus (TTS speech and the Asterisk prompts, then the game's real speakers when the game is
installed); the feature/target cache; FLINT motion prior; stage 1 (vertex loss); lip reader;
emotion classifier; stage 2 (vertex + lip-reading + emotion losses with content-emotion exchange,
FLINT decoder frozen); the checkpoint with its model card. `--fine-tune N` runs the recipe's
N-th fine-tune instead: the lip reader, emotion classifier and stage 2 again, from the previous
phase's checkpoint, on the Asterisk prompts and the game's training speakers
(`scripts/train_default_model.sh` runs the base and then each fine-tune). Every stage
checkpoints into `--work` and a rerun with --resume continues where it stopped. The stage-1
model is also saved as `<work>/stage1_model` for the stage-1 vs stage-2 comparison. The
checkpoint's config.json records the resolved recipe (provenance `resolved_recipe`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..inference import WHOLE_CLIP_NORMALISATION as AUDIO_NORMALISATION
from .plan import Plan, make_plan, parse_args
from .recipe import DESCRIPTION, SMOKE, TEACHER, CorpusPart, Recipe

REPO_ROOT = Path(__file__).resolve().parents[2]
# (torch seed, sampler seed) of each stage, as offsets from the recipe's seed
SEED_OFFSETS = {"flint": (0, 1), "stage1": (2, 2), "lip_reader": (3, 3),
                "emotion_classifier": (4, 4), "stage2": (5, 5)}


def log(msg: str) -> None:
    print(msg, flush=True)


def set_up(plan: Plan) -> None:
    """Refuse a destination or a run folder that would cost files (now, not after hours of
    training), then create the run folder and set the CPU threads."""
    from ..checkpoints import check_output_folder

    check_output_folder(plan.out)
    work = plan.work
    if work.exists() and any(p.name != "cache.npz" for p in work.iterdir()) and not plan.resume:
        raise SystemExit(f"{work} already holds a run; add --resume to continue it or choose "
                         "another --work folder")
    work.mkdir(parents=True, exist_ok=True)
    if plan.device == "cpu":
        torch.set_num_threads(plan.threads or min(2, os.cpu_count() or 1))


def _read_manifest(folder: Path) -> list[dict]:
    try:
        from .corpus import read_manifest
        rows = read_manifest(folder)
        return [r if isinstance(r, dict) else dict(vars(r)) for r in rows]
    except ImportError:  # pragma: no cover - before corpus.py lands
        with open(folder / "manifest.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def _augmented_copies(u, copies: int, seed: int) -> list:
    """`copies` channel/speaker-augmented versions of a real training utterance (deterministic
    per utterance id and seed), phone timings scaled with the audio."""
    import zlib

    from .augment import robust_augment
    from .feature_cache import Utterance

    out = []
    for c in range(copies):
        rng = np.random.default_rng([seed, zlib.crc32(u.uid.encode()), c])
        audio, _desc, scale = robust_augment(u.audio, rng)
        total = len(audio) / 16000
        phones = [[p, min(round(s * scale, 4), total), min(round(e * scale, 4), total)]
                  for p, s, e in u.phones]
        phones = [p for p in phones if p[2] > p[1]]
        out.append(Utterance(uid=f"{u.uid}~aug{c}", audio=audio, phones=phones, split=u.split,
                             source=u.source, voice=u.voice))
    return out


def load_utterances(folders: list[Path], game_copies: int = 0, seed: int = 0):
    """Utterances (audio loaded at 16 kHz) of every corpus folder, plus a summary for provenance.

    Game speech in the training split is also added `game_copies` times augmented
    (augment.robust_augment: speaker, rate, room, noise, and a 16 kHz / 11 kHz / 8 kHz channel);
    held-out speakers are never augmented or trained on."""
    from ..audio import load_audio
    from .feature_cache import Utterance

    from .speaker_split import HELDOUT, reconcile, split_of

    utts, summary = [], {"utterances": 0, "minutes": 0.0, "voices": {}, "engines": {},
                         "sources": {}, "corpora": [str(f) for f in folders],
                         "heldout_utterances": 0, "skipped_unlabelled": 0}
    for folder in folders:
        for r in reconcile(_read_manifest(folder)):
            # game speech: the split comes from the committed held-out list, never the manifest;
            # held-out speakers only validate (cache split 1), clips naming no speaker are left out
            split = split_of(r)
            if split not in ("train", "val", HELDOUT):
                summary["skipped_unlabelled"] += 1
                continue
            summary["heldout_utterances"] += split == HELDOUT
            wav = Path(r["wav"])
            audio = load_audio(str(wav if wav.is_absolute() else folder / wav))
            u = Utterance(uid=str(r["id"]), audio=audio, phones=[list(p) for p in r["phones"]],
                          split="val" if split == HELDOUT else split,
                          source=str(r.get("source", "tts")), voice=str(r.get("voice", "")))
            extra = (_augmented_copies(u, game_copies, seed)
                     if game_copies > 0 and u.source == "game" and u.split == "train" else [])
            for v in [u] + extra:
                utts.append(v)
                summary["utterances"] += 1
                summary["minutes"] += len(v.audio) / 16000 / 60
                for key, val in (("voices", v.voice), ("engines", str(r.get("engine", ""))),
                                 ("sources", v.source)):
                    summary[key][val] = summary[key].get(val, 0) + 1
    summary["minutes"] = round(summary["minutes"], 2)
    return utts, summary


def _run_module(module: str, args: list[str], nice: int = 0) -> None:
    """Run `python -m module args` (a corpus builder) in its own process; stop on failure."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", module, *args]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    if subprocess.run(cmd, env=env).returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (see its output above); rerun the same "
                         "command to continue")


def corpus_command(part: CorpusPart, out: Path) -> list[str]:
    """Arguments of model_runtime.training.corpus that build one part of the recipe's corpus."""
    return (["--out", str(out), "--hours", str(part.hours), "--seed", str(part.seed)]
            + (["--asterisk"] if part.asterisk else []))


def build_corpora(plan: Plan) -> None:
    """With --data: the recipe's corpus (a fine-tune's: the Asterisk prompts alone, in
    DATA/asterisk), then the game corpus, each part skipped once its done marker exists
    (deterministic per seed; the builders also resume by utterance/clip id)."""
    from .queen_data import QUEEN_1C

    recipe = plan.recipe
    if plan.fine_tune and not QUEEN_1C.is_file():  # before any corpus is built
        raise SystemExit("a fine-tune trains on the game's real speakers, but "
                         "flight-of-the-amazon-queen is not installed: apt-get install "
                         "flight-of-the-amazon-queen, or ship the base model")
    for i, part in enumerate(recipe.corpus, 1):
        marker = plan.corpus / f".stage{i}_done"
        if not marker.is_file():
            log(f"[corpus] part {i}: {part.hours:g} h of TTS speech (seed {part.seed})"
                + (" and the Asterisk prompts" if part.asterisk else ""))
            _run_module("model_runtime.training.corpus", corpus_command(part, plan.corpus))
            marker.touch()
    if not recipe.use_game_corpus:
        return
    if not QUEEN_1C.is_file():
        log("flight-of-the-amazon-queen is not installed (apt-get install "
            "flight-of-the-amazon-queen): training without real game speakers")
        plan.recipe = dataclasses.replace(recipe, use_game_corpus=False)  # as the record says
        return
    game = plan.data / "queen_corpus"
    if not (game / ".done").is_file():
        log("[corpus] the game's real speakers (about an hour on 2 cores, resumable)")
        _run_module("model_runtime.training.game_corpus", ["--out", str(game)], nice=10)
        (game / ".done").touch()
    if game not in plan.extra_corpora:
        plan.extra_corpora.append(game)
    if plan.fine_tune and plan.recipe.use_sky_corpus:
        from . import sky_data
        if not sky_data.installed():
            raise SystemExit("this fine-tune also trains on Beneath a Steel Sky's voices, but the "
                             "game is not installed: apt-get install beneath-a-steel-sky, or "
                             "add --sky-corpus off")
        sky = plan.data / "sky_corpus"
        if not (sky / ".done").is_file():
            log("[corpus] Beneath a Steel Sky's voices (a few minutes, resumable)")
            _run_module("model_runtime.training.sky_corpus", ["--out", str(sky)], nice=10)
            (sky / ".done").touch()
        if sky not in plan.extra_corpora:
            plan.extra_corpora.append(sky)


def ensure_cache(plan: Plan) -> Path:
    """Build the cache unless it exists (or --cache-only says it must)."""
    from ..networks.audio_encoders import LogMelEncoder
    from . import teacher
    from .feature_cache import build_cache

    path, recipe = plan.cache, plan.recipe
    if path.is_file():
        log(f"[cache] using {path}")
        return path
    if plan.cache_only:
        raise SystemExit(f"--cache-only but no cache at {path}; build it first without "
                         "--cache-only on a machine with the corpus")
    folders = [plan.corpus] + plan.extra_corpora
    for f in folders:
        if not (f / "manifest.jsonl").is_file():
            raise SystemExit(f"no manifest.jsonl in {f}; build the corpus first")
    utts, summary = load_utterances(folders, recipe.game_copies, recipe.seed)
    summary["game_copies"] = recipe.game_copies
    log(f"[cache] {summary['utterances']} utterances, {summary['minutes']:.1f} min of audio")
    enc = LogMelEncoder(plan.arch)

    def feature_fn(a):
        with torch.no_grad():
            return enc.features(torch.from_numpy(a)[None])[0].numpy()

    def teacher_fn(phones, audio, w, i, style, rng):
        return teacher.teacher_animation(phones, audio, w, i, style, rng)

    return build_cache(utts, path, feature_fn, teacher_fn, teacher.random_emotion_curve,
                       list(teacher.STYLES), variants=recipe.teacher_variants, seed=recipe.seed,
                       extra_meta={"corpus": summary, "n_mels": int(plan.arch["n_mels"])},
                       progress=log)


def load_head(path: str | None = None):
    """The head the model is trained for: `path`, or the bundled open head."""
    from ..heads.head_model import load_head as _load
    if path:
        return _load(path)
    from ..heads.open_head import default_head_path
    return _load(default_head_path())


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).parent).stdout.strip()
    except Exception:  # noqa: BLE001 - provenance only
        return ""


@dataclass
class TrainingRun:
    """What the training phases share: the plan, the cache and its split, the loss views of
    the head, each stage's time budget, and the results so far."""
    plan: Plan
    cache: object
    train_idx: np.ndarray
    val_idx: np.ndarray
    head: object
    views: object
    budgets: dict[str, float]
    results: dict = field(default_factory=dict)
    model: object = None  # the talking head, once stage 1 (or --init-from) made it
    init_provenance: dict | None = None

    def seeded_samplers(self, stage: str, window: int, speaker_balance: float = 0.0):
        """Seed torch for `stage` and give its (train, val) window samplers (the train one
        draws voices by `speaker_balance`, dataset.speaker_balanced)."""
        from .dataset import WindowSampler

        torch_offset, sampler_offset = SEED_OFFSETS[stage]
        torch.manual_seed(self.plan.recipe.seed + torch_offset)
        seed = self.plan.recipe.seed + sampler_offset
        return (WindowSampler(self.cache, self.train_idx, window, seed=seed,
                              speaker_balance=speaker_balance),
                WindowSampler(self.cache, self.val_idx, window, seed=seed + 1000))

    def stage_args(self, stage: str) -> dict:
        """The loop settings every stage function takes, from the plan and recipe."""
        s = self.plan.recipe.stages[stage]
        return {"steps": self.plan.steps[stage], "stop_at": self.plan.stop_at.get(stage),
                "batch": s.batch, "lr": s.lr, "budget_s": self.budgets[stage],
                "device": self.plan.device, "log": log, "log_every": self.plan.log_every}


def _recipe_of_cache(recipe: Recipe, cache) -> Recipe:
    """The recipe with the teacher variants and game copies of the cache actually used (one
    built earlier may hold others than this command asks for)."""
    corpus = cache.meta.get("corpus", {})
    return dataclasses.replace(recipe, teacher_variants=int(cache.variants),
                               game_copies=int(corpus.get("game_copies", recipe.game_copies)))


def open_run(plan: Plan, cache_path: Path, head, t0: float) -> TrainingRun:
    """Load the cache, pick the training and validation utterances, and share the time left
    of the budget between the stages this run trains."""
    from .feature_cache import load_cache
    from .head_views import HeadViews

    cache = load_cache(cache_path)
    n_mels = int(plan.arch["n_mels"])
    if int(cache.meta.get("n_mels", n_mels)) != n_mels:
        raise SystemExit(f"{cache_path} holds {cache.meta['n_mels']}-band features but this "
                         f"architecture needs {n_mels}; use another --cache")
    sources = ("tts",) if plan.tts_only else None
    tr, va = cache.indices("train", sources), cache.indices("val", sources)
    if len(va) == 0:
        va = tr[:1]
    log(f"[train] {len(tr)} train / {len(va)} val utterances"
        f"{' (TTS only)' if plan.tts_only else ''}")
    plan.recipe = _recipe_of_cache(plan.recipe, cache)
    budget = max(60.0, plan.recipe.minutes_budget * 60 - (time.time() - t0))
    shares = {k: v for k, v in plan.recipe.time_shares().items()
              if not (plan.init_from and k in ("flint", "stage1"))}  # a fine-tune skips those two
    budgets = {k: v / sum(shares.values()) * budget for k, v in shares.items()}
    views = (HeadViews(head, *SMOKE.head_views) if plan.smoke else HeadViews(head))
    return TrainingRun(plan=plan, cache=cache, train_idx=tr, val_idx=va, head=head,
                       views=views.to(plan.device), budgets=budgets)


def train_motion_prior(run: TrainingRun):
    """FLINT: the temporal VAE whose decoder becomes the talking head's output layer."""
    from ..networks.flint import FlintVAE
    from .flint_training import train_flint

    plan = run.plan
    train, val = run.seeded_samplers("flint", plan.recipe.flint_window_frames)
    vae = FlintVAE({**plan.arch}).to(plan.device)
    run.results["flint"] = train_flint(vae, run.views, train, val, plan.work,
                                       kl_weight=plan.recipe.flint_kl_weight,
                                       **run.stage_args("flint"))
    return vae


def train_first_stage(run: TrainingRun, vae) -> None:
    """Stage 1: the talking head on the frozen FLINT decoder, vertex + lip-gap (+ width) loss."""
    from ..networks.talking_head import TalkingHead
    from .stage1 import train_stage1

    plan = run.plan
    train, val = run.seeded_samplers("stage1", plan.recipe.window_frames)
    model = TalkingHead(plan.arch, zero_init=True).to(plan.device)
    model.flint.load_state_dict(vae.motion_decoder.state_dict())
    run.results["stage1"] = train_stage1(model, run.views, train, val, plan.work,
                                         gap_weight=plan.recipe.stage1_gap_weight,
                                         width_weight=plan.recipe.stage1_width_weight,
                                         **run.stage_args("stage1"))
    run.model = model


def start_from_checkpoint(run: TrainingRun) -> None:
    """--init-from: the talking head (FLINT and stage 1) of an existing checkpoint."""
    from ..checkpoints import load_checkpoint
    from ..networks.talking_head import TalkingHead

    plan = run.plan
    init_model, init_cfg = load_checkpoint(plan.init_from)
    if init_cfg["architecture"] != plan.arch:
        raise SystemExit(f"{plan.init_from} has another architecture than this command builds")
    run.model = TalkingHead(plan.arch).to(plan.device)
    run.model.load_state_dict(init_model.state_dict())
    run.init_provenance = init_cfg.get("provenance", {})
    log(f"[train] fine-tuning {plan.init_from}: FLINT and stage 1 come from it")


def train_perceptual_nets(run: TrainingRun):
    """The lip reader and the emotion classifier on teacher motion; stage 2's frozen judges."""
    from .emotion_classifier import (EmotionClassifier,
                                                           train_emotion_classifier)
    from .lip_reader import LipReader, train_lip_reader

    plan, hidden = run.plan, run.plan.recipe.perceptual_hidden
    train, val = run.seeded_samplers("lip_reader", plan.recipe.window_frames)
    reader = LipReader(run.views.mouth_dim, hidden=hidden).to(plan.device)
    run.results["lip_reader"] = train_lip_reader(reader, run.views, train, val, plan.work,
                                                 **run.stage_args("lip_reader"))
    train, val = run.seeded_samplers("emotion_classifier", plan.recipe.window_frames)
    clf = EmotionClassifier(run.views.emotion_dim, hidden=hidden).to(plan.device)
    run.results["emotion_classifier"] = train_emotion_classifier(
        clf, run.views, train, val, plan.work, **run.stage_args("emotion_classifier"))
    return reader, clf


def train_second_stage(run: TrainingRun, reader, clf) -> None:
    """Stage 2: the recipe's weighted vertex, lip-reading, emotion, lip-gap and width losses
    with content-emotion exchange."""
    from .stage2 import train_stage2

    from .feature_augment import FeatureAugment

    plan, recipe = run.plan, run.plan.recipe
    train, val = run.seeded_samplers("stage2", recipe.window_frames, recipe.speaker_balance)
    aug = FeatureAugment(fmin=float(plan.arch["fmin"]), fmax=float(plan.arch["fmax"]))
    run.results["stage2"] = train_stage2(run.model, run.views, reader, clf, train, val, plan.work,
                                         weights=recipe.stage2_weights.as_dict(),
                                         seed=recipe.seed,
                                         feature_augment=aug if recipe.feature_augment else None,
                                         adversary_weight=recipe.speaker_adversary,
                                         upper_face_weight=recipe.upper_face,
                                         flint_lr_scale=recipe.flint_lr_scale,
                                         mouth_emotion_weight=recipe.mouth_emotion,
                                         encoder_lr_scale=recipe.encoder_lr_scale,
                                         **run.stage_args("stage2"))


def training_record(run: TrainingRun, stage_names: list[str]) -> dict:
    """The checkpoint's provenance: data, the resolved recipe, what each stage ran and its last
    logged figures."""
    plan, recipe = run.plan, run.plan.recipe
    res = {k: run.results[k] for k in stage_names if k in run.results}
    final = {k: {kk: round(vv, 5) for kk, vv in r.history[-1][1].items()}
             for k, r in res.items() if r.history}
    return {
        "trained_on": run.cache.meta.get("corpus", {}), "tts_only": bool(plan.tts_only),
        "teacher": TEACHER, "recipe": DESCRIPTION, "command": plan.command,
        "date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(), "device": plan.device,
        "torch": torch.__version__, "steps": {k: r.steps for k, r in res.items()},
        "minutes": {k: round(r.seconds / 60, 1) for k, r in res.items()},
        "steps_scale": plan.steps_scale, "smoke": bool(plan.smoke), "batch": recipe.batches(),
        "lr": recipe.learning_rates(), "window_frames": recipe.window_frames,
        "loss_weights_stage2": recipe.stage2_weights.as_dict(),
        "flint_kl_weight": recipe.flint_kl_weight, "cache_variants": run.cache.variants,
        "metrics": final, "gap_weight_stage1": recipe.stage1_gap_weight,
        "width_weight_stage1": recipe.stage1_width_weight,
        **({"init_from": {"folder": str(plan.init_from), "provenance": run.init_provenance}}
           if run.init_provenance is not None else {}),
        "planned_steps": dict(plan.steps), "resolved_recipe": recipe.as_dict(),
    }


def ship(run: TrainingRun, folder: Path, stage_names: list[str], card: bool = True) -> dict:
    """Save the talking head with its config (and model card) into `folder`."""
    from ..checkpoints import make_config, save_checkpoint
    from ..heads.arkit_channels import OPEN_HEAD_CHANNELS
    from . import teacher
    from .model_card import write_model_card

    config = make_config(run.plan.arch, OPEN_HEAD_CHANNELS, list(teacher.STYLES),
                         run.head.head_id, training_record(run, stage_names))
    # the features were computed from whole-clip normalised audio (zero mean, unit variance)
    config["audio_normalisation"] = AUDIO_NORMALISATION
    run.model.eval()
    save_checkpoint(run.model.cpu(), config, folder)
    run.model.to(run.plan.device)
    if card:
        write_model_card(folder, config)
    return config


def main(argv=None) -> int:
    plan = make_plan(parse_args(argv, __doc__), argv)
    set_up(plan)
    if plan.data is not None and not plan.cache_only:
        build_corpora(plan)
    t0 = time.time()
    log(f"[train] device {plan.device}, steps {plan.steps}, "
        f"budget {plan.recipe.minutes_budget:.0f} min")
    head = load_head(plan.head)
    cache_path = ensure_cache(plan)
    if plan.build_cache_only:
        log(f"[train] cache ready at {cache_path}")
        return 0
    run = open_run(plan, cache_path, head, t0)
    if plan.init_from:
        start_from_checkpoint(run)
    else:
        train_first_stage(run, train_motion_prior(run))
        ship(run, plan.work / "stage1_model", ["flint", "stage1"], card=False)
        log(f"[train] stage-1 model saved to {plan.work / 'stage1_model'}")
    if plan.stage1_only:
        ship(run, plan.out, ["flint", "stage1"])
        log(f"[train] done (stage 1 only) in {(time.time() - t0) / 60:.1f} min -> {plan.out}")
        return 0
    reader, clf = train_perceptual_nets(run)
    train_second_stage(run, reader, clf)
    ship(run, plan.out, list(run.results))
    log(f"[train] done in {(time.time() - t0) / 60:.1f} min -> {plan.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
