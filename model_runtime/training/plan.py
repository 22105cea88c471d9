"""The plan of a training run: the command line of `train_default`, whose defaults are the
shipped recipe (`recipe.SHIPPED`), resolved into the recipe this run uses, its folders, device
and step counts."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .recipe import FINE_TUNE_CORPUS, SHIPPED, SMOKE, STAGES, Recipe

WEIGHTS = SHIPPED.stage2_weights  # the shipped stage-2 loss weights


def parse_args(argv=None, doc: str = "") -> argparse.Namespace:
    """The command line of train_default (`doc`: its docstring, the first line describes it)."""
    p = argparse.ArgumentParser(prog="python -m model_runtime.training.train_default",
                                description=doc.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None,
                   help="build the recipe's corpus under DATA first (DATA/corpus, and "
                        "DATA/queen_corpus when the game is installed; each part resumes) and "
                        "train in DATA/train_run (DATA/train_run_tts_only with --tts-only)")
    p.add_argument("--corpus", default=None,
                   help="corpus folder with manifest.jsonl (default data/corpus, or DATA/corpus)")
    p.add_argument("--extra-corpus", action="append", default=[],
                   help="more corpus folders (e.g. data/asterisk); repeatable")
    p.add_argument("--no-game", action="store_true",
                   help="with --data: train without the game's real speakers")
    p.add_argument("--game-copies", type=int, default=SHIPPED.game_copies,
                   help="augmented copies of each training clip of a game corpus (speaker, rate, "
                        "room, noise, 16/11/8 kHz channel); held-out speakers never")
    p.add_argument("--work", default=None, help="stage checkpoints and the cache "
                   "(default data/train_run, or DATA/train_run)")
    p.add_argument("--out", default="model_runtime/default_model", help="final checkpoint folder")
    p.add_argument("--cache", default=None, help="cache file (default <work>/cache.npz)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--minutes-budget", type=float, default=None,
                   help=f"wall clock of the run (default {SHIPPED.minutes_budget:g}, or the "
                        "fine-tune's own)")
    p.add_argument("--resume", action="store_true", help="continue from <work> (else it must be "
                   "empty or absent)")
    p.add_argument("--cache-only", action="store_true",
                   help="train from an existing cache only (no corpus or TTS tools needed)")
    p.add_argument("--build-cache-only", action="store_true",
                   help="build the cache (e.g. to copy it to a GPU machine) and stop")
    p.add_argument("--tts-only", action="store_true", help="train on TTS utterances only")
    p.add_argument("--stage1-only", action="store_true", help="stop after stage 1 and ship it")
    p.add_argument("--variants", type=int, default=SHIPPED.teacher_variants,
                   help="teacher variants per utterance")
    p.add_argument("--steps-scale", type=float, default=None,
                   help="multiply the recipe's steps (default: 1 on CPU, "
                        f"{SHIPPED.gpu_steps_scale:g} on GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=SHIPPED.seed)
    p.add_argument("--head", default=None, help="head-model .npz (default: the open head)")
    for name, what in (("lip", "lip-reading"), ("emotion", "emotion"), ("gap", "lip-gap"),
                       ("width", "mouth-width")):
        p.add_argument(f"--{name}-weight", type=float, default=getattr(WEIGHTS, name),
                       help=f"stage-2 {what} loss weight")
    p.add_argument("--closure-weight", type=float, default=None,
                   help="stage-2 extra weight of the lip-gap error where the teacher's lips touch "
                        f"(default {WEIGHTS.closed:g}, or the fine-tune's own)")
    p.add_argument("--speaker-balance", type=float, default=None, metavar="POWER",
                   help="stage 2 draws utterances by frames / voice frames ** POWER (0: by "
                        "frames, 1: every voice alike; default the recipe's or fine-tune's)")
    p.add_argument("--feature-augment", choices=("on", "off"), default=None,
                   help="stage 2 warps, tilts and masks the log-mel of every batch (default the "
                        "recipe's or fine-tune's)")
    p.add_argument("--speaker-adversary", type=float, default=None, metavar="W",
                   help="stage 2 trains a speaker adversary on the audio encoder's frames and "
                        "sends the encoder its reversed gradient times W (0: none; default the "
                        "recipe's or fine-tune's)")
    p.add_argument("--upper-face-weight", type=float, default=None, metavar="W",
                   help="stage-2 L1 term on the upper-face channels (brows, lids, cheeks) against "
                        "the teacher (0: none; default the recipe's or fine-tune's)")
    p.add_argument("--mouth-emotion-weight", type=float, default=None, metavar="W",
                   help="stage-2 L1 term on the smile, dimple and frown channels against the "
                        "teacher (0: none; default the recipe's or fine-tune's)")
    p.add_argument("--flint-lr-scale", type=float, default=None, metavar="F",
                   help="stage 2 also trains the FLINT decoder at F times its learning rate (0: "
                        "frozen, as in EMOTE; default the recipe's or fine-tune's)")
    p.add_argument("--encoder-lr-scale", type=float, default=None, metavar="F",
                   help="stage 2 trains the audio encoder at F times its learning rate (0: "
                        "frozen; default the recipe's or fine-tune's)")
    p.add_argument("--sky-corpus", choices=("on", "off"), default=None,
                   help="with --data and --fine-tune: also train on Beneath a Steel Sky's voices "
                        "(DATA/sky_corpus, built first; default the fine-tune's)")
    p.add_argument("--stage1-width-weight", type=float, default=SHIPPED.stage1_width_weight,
                   help="stage-1 mouth-width loss weight")
    p.add_argument("--steps", action="append", default=[], metavar="STAGE=N",
                   help="steps of one stage on a CPU (scaled on a GPU like the rest), e.g. "
                        "stage2=2200; repeatable")
    p.add_argument("--stop-at", action="append", default=[], metavar="STAGE=N",
                   help="end a stage after N steps of its schedule (early stopping; scaled on "
                        "a GPU like the steps), e.g. stage2=1052; repeatable")
    p.add_argument("--init-from", default=None,
                   help="checkpoint folder to fine-tune: skips FLINT and stage 1 and continues "
                        "with the lip reader, the emotion classifier and stage 2 from its weights")
    p.add_argument("--fine-tune", type=int, default=0, metavar="N",
                   help="with --data: fine-tune N of the recipe (1, 2, ...): from "
                        "DATA/base_model (N=1) or DATA/fine_tune_<N-1>_model, on DATA/asterisk "
                        "and DATA/queen_corpus, in DATA/fine_tune_<N>_run")
    p.add_argument("--smoke", action="store_true",
                   help="tiny architecture and batches (pipeline check, not a usable model)")
    p.add_argument("--log-every", type=int, default=20, help="progress line every N steps")
    return p.parse_args(argv)


# stage-2 options that default to the recipe's (or fine-tune's) value: Recipe field -> option
STAGE2_OPTIONS = {"speaker_balance": "speaker_balance", "feature_augment": "feature_augment",
                  "speaker_adversary": "speaker_adversary", "upper_face": "upper_face_weight",
                  "mouth_emotion": "mouth_emotion_weight", "flint_lr_scale": "flint_lr_scale",
                  "encoder_lr_scale": "encoder_lr_scale"}


def _stage2_overrides(args: argparse.Namespace) -> dict:
    """The Recipe fields of STAGE2_OPTIONS the command line sets ("on"/"off" become bools)."""
    out = {}
    for field, dest in STAGE2_OPTIONS.items():
        value = getattr(args, dest)
        if value is not None:
            out[field] = value == "on" if isinstance(value, str) else value
    return out


def resolve_recipe(args: argparse.Namespace) -> Recipe:
    """The shipped recipe (or its fine-tune `--fine-tune N`) with the command line's overrides:
    the values this run uses."""
    base = SHIPPED
    if args.fine_tune:
        try:
            base = SHIPPED.fine_tune(args.fine_tune)
        except ValueError as exc:
            raise SystemExit(f"--fine-tune {args.fine_tune}: {exc}") from None
    stages = dict(base.stages)
    for option, items, field in (("--steps", args.steps, "cpu_steps"),
                                 ("--stop-at", args.stop_at, "stop_at")):
        for item in items:
            name, _, n = item.partition("=")
            if name not in stages or not n.isdigit():
                raise SystemExit(f"{option} {item!r}: give STAGE=N with STAGE one of "
                                 f"{', '.join(STAGES)}")
            stages[name] = dataclasses.replace(stages[name], **{field: int(n)})
    recipe = dataclasses.replace(
        base, seed=args.seed,
        minutes_budget=base.minutes_budget if args.minutes_budget is None else args.minutes_budget,
        teacher_variants=args.variants, game_copies=args.game_copies,
        stage1_width_weight=args.stage1_width_weight, stages=stages,
        stage2_weights=dataclasses.replace(
            WEIGHTS, lip=args.lip_weight, emotion=args.emotion_weight, gap=args.gap_weight,
            width=args.width_weight,
            closed=base.stage2_weights.closed if args.closure_weight is None
            else args.closure_weight),
        **_stage2_overrides(args))
    if args.fine_tune:
        if args.data is None or args.no_game or args.tts_only:
            raise SystemExit("--fine-tune trains on the game's speakers in DATA: give --data "
                             "DATA, without --no-game or --tts-only")
        recipe = dataclasses.replace(recipe, corpus=(FINE_TUNE_CORPUS,))
        if args.sky_corpus is not None:
            recipe = dataclasses.replace(recipe, use_sky_corpus=args.sky_corpus == "on")
    elif args.data is None:  # the corpus was given: this run builds none
        recipe = dataclasses.replace(recipe, corpus=(), use_game_corpus=False)
    elif args.no_game or args.tts_only:
        recipe = dataclasses.replace(recipe, use_game_corpus=False)
    if args.smoke:
        recipe = dataclasses.replace(
            recipe, perceptual_hidden=SMOKE.perceptual_hidden,
            stages={k: dataclasses.replace(s, batch=SMOKE.batch) for k, s in stages.items()})
    return recipe


@dataclass
class Plan:
    """What a run does: the resolved recipe, its folders, device and step counts."""
    recipe: Recipe
    corpus: Path
    extra_corpora: list[Path]
    work: Path
    out: Path
    cache: Path
    device: str
    steps_scale: float
    steps: dict[str, int]
    stop_at: dict[str, int]  # stages that end early, after this many steps of their schedule
    arch: dict
    command: str
    data: Path | None = None  # build the recipe's corpus here first
    head: str | None = None
    threads: int | None = None
    resume: bool = False
    smoke: bool = False
    tts_only: bool = False
    cache_only: bool = False
    build_cache_only: bool = False
    stage1_only: bool = False
    init_from: str | None = None
    fine_tune: int = 0  # which of the recipe's fine-tunes this run is (0: the base)
    log_every: int = 20


def make_plan(args: argparse.Namespace, argv=None) -> Plan:
    """Resolve the recipe, folders, device and step counts of a parsed command line."""
    from ..checkpoints import default_arch
    from ..heads.arkit_channels import OPEN_HEAD_CHANNELS
    from . import teacher

    recipe = resolve_recipe(args)
    data = Path(args.data) if args.data is not None else None
    base = data if data is not None else Path("data")
    n = args.fine_tune
    corpus = Path(args.corpus) if args.corpus else base / ("asterisk" if n else "corpus")
    work = Path(args.work) if args.work else base / (
        f"fine_tune_{n}_run" if n else
        "train_run_tts_only" if data is not None and args.tts_only else "train_run")
    init_from = args.init_from or (None if not n else str(
        base / ("base_model" if n == 1 else f"fine_tune_{n - 1}_model")))
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    scale = args.steps_scale if args.steps_scale is not None else (
        1.0 if device == "cpu" else recipe.gpu_steps_scale)
    arch = default_arch(len(OPEN_HEAD_CHANNELS) + 3, len(teacher.STYLES))
    if args.smoke:
        arch.update(SMOKE.arch)
    return Plan(
        recipe=recipe, corpus=corpus, extra_corpora=[Path(f) for f in args.extra_corpus],
        work=work, out=Path(args.out), cache=Path(args.cache) if args.cache else work / "cache.npz",
        device=device, steps_scale=scale,
        steps={k: max(1, int(round(v * scale))) for k, v in recipe.cpu_steps().items()},
        stop_at={k: max(1, int(round(s.stop_at * scale))) for k, s in recipe.stages.items()
                 if s.stop_at},
        arch=arch, data=data, head=args.head, threads=args.threads, resume=args.resume,
        smoke=args.smoke, tts_only=args.tts_only, cache_only=args.cache_only,
        build_cache_only=args.build_cache_only, stage1_only=args.stage1_only,
        init_from=init_from, fine_tune=n, log_every=args.log_every,
        command="python -m model_runtime.training.train_default " + " ".join(
            sys.argv[1:] if argv is None else argv))
