"""The runtime's command line: `python -m model_runtime generate|serve|convert-official|batch|plot`.

Programs (the Blender extension) use `generate --request REQ.json --out RESULT.npz --progress
jsonl` or the warm `serve` loop and read JSON lines on stdout; people use
`generate AUDIO --emotion happy -o out.npz`. Torch is imported only by the commands that run a
network, so `--help` is quick. Exit codes: 0 done, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

from .errors import EmoteInputError, warnings_to
from .networks.attention_modes import ATTENTION_MODES, TRAINED
from .progress import bar_progress, emit, jsonl_progress, no_progress

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
INTERNAL_MESSAGE = ("The runtime failed unexpectedly ({error}). This is a bug: please report it "
                    "with the traceback printed on stderr.")
PROGRESS_CHOICES = ("auto", "jsonl", "bar", "none")


@dataclass
class Command:
    """A subcommand: `configure(parser)` adds its arguments, `run(args) -> exit code` does it."""

    name: str
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register_command(command: Command) -> None:
    """Hook for other parts of the runtime to add a subcommand (last registration wins)."""
    COMMANDS[command.name] = command


# ---------------------------------------------------------------------------------------------
# generate


def _configure_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="?", metavar="AUDIO",
                   help="audio file to animate (WAV, FLAC, OGG or MP3, any sample rate from 8 to "
                        "192 kHz, any channel count). Omit it when using --request.")
    p.add_argument("--request", metavar="REQ.json",
                   help="read everything from a request JSON file (the format the Blender "
                        "extension writes; see DESIGN.md) instead of the options below")
    p.add_argument("-o", "--out", required=True, metavar="RESULT.npz",
                   help="where to write the result (.npz with fps, exp, jaw, exp_names, model_id, "
                        "head_id). Written only on success: a failed, cancelled or killed run "
                        "leaves an old file there as it was. May not be the audio or request "
                        "file.")
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="jsonl: JSON progress/done/error lines on stdout (for programs); bar: a "
                        "progress bar on stderr; none: quiet; auto (default): bar when stderr is "
                        "a terminal, else none")
    g = p.add_argument_group("options for the AUDIO form")
    g.add_argument("--emotion", default="neutral", metavar="NAME[:W,...]",
                   help="emotion for the whole clip: one of neutral, happy, sad, surprised, "
                        "fear, disgusted, angry, contempt, or a mixture such as "
                        "'happy:0.7,surprised:0.3' (weights are normalised). Default: neutral")
    g.add_argument("--intensity", type=_unit_float, default=0.5, metavar="0..1",
                   help="emotion intensity from 0 (weakest) to 1 (strongest). Default: 0.5")
    g.add_argument("--fps", type=_positive_float, default=25.0,
                   help="frame rate of the result, fractional allowed (e.g. 29.97). Default: 25")
    g.add_argument("--model", default="default", metavar="default|DIR",
                   help="'default' for the bundled model, or a checkpoint folder "
                        "(config.json + model.safetensors). Default: default")
    g.add_argument("--style", default=None, metavar="NAME",
                   help="speaking style (identity) of the model; default: the model's first")
    g.add_argument("--start", type=_non_negative_float, default=0.0, metavar="S",
                   help="start of the part of the audio to use, in seconds. Default: 0")
    g.add_argument("--end", type=_non_negative_float, default=None, metavar="S",
                   help="end of the part of the audio to use, in seconds. Default: end of file")
    _add_face_arguments(p, "AUDIO form; a --request gives them in its 'alive' and "
                             "'strengths' fields")


def _add_face_arguments(p: argparse.ArgumentParser, where: str) -> None:
    """Blinks, gaze, head motion and the strength controls (generate's AUDIO form and batch)."""
    life = p.add_argument_group(f"blinks, gaze and head motion ({where})")
    for flag, what in (("blinks", "blinks"), ("gaze", "eye saccades and fixations"),
                       ("head-motion", "head sway and nods")):
        life.add_argument(f"--{flag}", type=_strength, default=1.0, metavar="0..2",
                          help=f"strength of the {what}. Default: 1")
        life.add_argument(f"--no-{flag}", action="store_true",
                          help=f"no {what} (the result's track is all zero)")
    life.add_argument("--seed", type=_non_negative_int, default=0,
                      help="random seed of blinks, gaze and head motion: the same seed gives the "
                           "same take. Default: 0")
    tune = p.add_argument_group(f"strength controls ({where})")
    tune.add_argument("--upper-face", type=_strength, default=1.0, metavar="0..2",
                      help="scale of brows, lids and nose (not the blinks). Default: 1")
    tune.add_argument("--lower-face", type=_strength, default=1.0, metavar="0..2",
                      help="scale of mouth, cheeks' puff and jaw. Default: 1")
    tune.add_argument("--lip-closure", type=_strength, default=1.0, metavar="0..2",
                      help="extra scale of the lip-pressing channels (mouthClose, mouthPress, "
                           "mouthRoll). Default: 1")
    tune.add_argument("--smoothing", type=_smoothing, default=0.0, metavar="S",
                      help="temporal smoothing of expression and jaw, a Gaussian of this many "
                           "seconds (0 to 0.25). Default: 0")


def face_fields(args: argparse.Namespace) -> dict:
    """The request's `alive` and `strengths` fields from _add_face_arguments' options."""
    return {
        "alive": {"blinks": 0.0 if args.no_blinks else args.blinks,
                  "gaze": 0.0 if args.no_gaze else args.gaze,
                  "head_motion": 0.0 if args.no_head_motion else args.head_motion,
                  "seed": args.seed},
        "strengths": {"upper_face": args.upper_face, "lower_face": args.lower_face,
                      "lip_closure": args.lip_closure, "smoothing": args.smoothing},
    }


def _run_generate(args: argparse.Namespace) -> int:
    with _session(args.progress) as session:
        if args.request:
            from .safe_write import refuse_overwriting_input

            refuse_overwriting_input(args.out, {"request file": args.request})
        request = _request_from_args(args)
        from .inference import run_request

        summary = run_request(request, args.out, session.report)
        session.finish({"event": "done", "out": str(args.out)},
                       f"Wrote {args.out}: {summary['frames']} frames at {summary['fps']:g} fps "
                       f"(model {summary['model_id']}).")
    return session.exit_code


def _request_from_args(args: argparse.Namespace) -> dict:
    if args.request:
        if args.audio:
            raise _ArgError("give either AUDIO or --request, not both")
        try:
            with open(args.request, encoding="utf-8-sig") as fh:  # a BOM (Notepad) is fine
                request = json.load(fh)
        except FileNotFoundError:
            raise _ArgError(f"request file {args.request} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _ArgError(f"request file {args.request} is not valid JSON ({exc})") from None
        return request
    if not args.audio:
        raise _ArgError("give an AUDIO file or --request REQ.json")
    names, weights = _parse_emotion(args.emotion)
    return {
        "audio": args.audio, "audio_start_s": args.start, "audio_end_s": args.end,
        "fps": args.fps, "frame_count": None, "model": args.model, "identity": args.style,
        "emotion": {"names": names, "weights": [weights]}, "intensity": [args.intensity],
        **face_fields(args),
    }


def _parse_emotion(text: str) -> tuple[list[str], list[float]]:
    """'happy' or 'happy:0.7,sad:0.3' -> (names, weights)."""
    from .conditions import emotion_index

    names, weights = [], []
    for part in str(text).split(","):
        name, _, weight = part.strip().partition(":")
        emotion_index(name)  # raises bad_request listing the valid names
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise EmoteInputError("bad_request", f"Emotion weight {weight!r} in {text!r} is not a "
                                  "number; write mixtures as happy:0.7,sad:0.3.") from None
        names.append(name.strip())
        weights.append(w)
    return names, weights


# ---------------------------------------------------------------------------------------------
# serve


def _configure_serve(p: argparse.ArgumentParser) -> None:
    from .serve import EPILOG

    p.epilog = EPILOG


def _run_serve(args: argparse.Namespace) -> int:
    from . import serve

    return serve.run(internal_message=INTERNAL_MESSAGE)


# ---------------------------------------------------------------------------------------------
# convert-official and batch (implemented in their own modules, imported lazily)


def _configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="official EMOTE talking-head .ckpt file")
    p.add_argument("--cfg", required=True, help="its cfg.yaml")
    p.add_argument("--flint", required=True, help="the FLINT motion-prior .ckpt file")
    p.add_argument("--flint-cfg", help="the FLINT motion prior's cfg.yaml (optional: its settings "
                   "are checked too; without it EMOTE's FLINT settings are assumed)")
    p.add_argument("--attention", choices=ATTENTION_MODES, default=TRAINED,
                   help="trained: the float ALiBi bias the weights were trained with (default); "
                        "official-demo: the hard band the official demo computes under "
                        "torch >= 2.0")
    p.add_argument("--out", required=True,
                   help="checkpoint folder to create: a new or empty folder (a folder holding "
                        "other files, such as the download folder, is refused)")
    p.add_argument("--force", action="store_true",
                   help="replace the config.json and model.safetensors of an earlier "
                        "conversion in --out (nothing else there is touched)")
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="jsonl: a JSON done/error line on stdout; otherwise plain text")


def _run_convert(args: argparse.Namespace) -> int:
    with _session(args.progress) as session:
        from .convert_official import convert_official

        convert_official(args.ckpt, args.cfg, args.flint, args.out, attention=args.attention,
                         flint_cfg=args.flint_cfg, force=args.force)
        session.finish({"event": "done", "out": str(args.out)},
                       f"Wrote checkpoint folder {args.out}.")
    return session.exit_code


def _configure_batch(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+",
                   help="audio files, folders of them, .txt lists (one path per line) or .csv "
                        "files (columns: audio, name, emotion, intensity, style, start, end)")
    p.add_argument("--out", required=True, help="folder for one RESULT .npz per line")
    p.add_argument("--emotion", default="neutral", help="emotion where a line gives none")
    p.add_argument("--intensity", type=_unit_float, default=1.0,
                   help="intensity 0..1 where a line gives none. Default: 1")
    p.add_argument("--style", default=None, help="speaking style where a line gives none")
    p.add_argument("--fps", type=_positive_float, default=30.0, help="frame rate. Default: 30")
    p.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: one per CPU core)")
    p.add_argument("--retry-failed", action="store_true",
                   help="only retry the lines that failed before (with the same settings); "
                        "lines done with other settings are redone on a plain rerun")
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="jsonl: JSON lines on stdout; otherwise a bar on a terminal")
    _add_face_arguments(p, "every line")


def _run_batch(args: argparse.Namespace) -> int:
    jsonl = args.progress == "jsonl"
    try:
        module = importlib.import_module(".batch", __package__)
        return int(module.main(args))
    except EmoteInputError as exc:
        _report_error(jsonl, exc.kind, exc.message)
        return EXIT_INPUT
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        _report_error(jsonl, "internal", INTERNAL_MESSAGE.format(error=f"{type(exc).__name__}: "
                                                                       f"{exc}"))
        return EXIT_INTERNAL


def _configure_plot(p: argparse.ArgumentParser) -> None:
    from .plots import add_arguments

    add_arguments(p)


def _run_plot(args: argparse.Namespace) -> int:
    with _session(args.progress) as session:
        from . import plots

        out = plots.plot_result(args.result, args.out, plots.read_json(args.request, "request"),
                                plots.read_json(args.labels, "labels file"),
                                plots.keys_from_args(args.key), args.title, args.first_frame)
        session.finish({"event": "done", "out": str(out)}, f"Wrote {out}.")
    return session.exit_code


register_command(Command(
    "generate", "animate one audio file or request",
    "Turn speech audio into FLAME expression + jaw animation (RESULT.npz).",
    _configure_generate, _run_generate))
register_command(Command(
    "serve", "warm runtime: handle requests from stdin, one JSON object per line",
    "Keep models loaded and handle generate requests read from stdin.",
    _configure_serve, _run_serve))
register_command(Command(
    "convert-official", "convert an official EMOTE checkpoint to this runtime's format",
    "Convert the official EMOTE talking-head + FLINT checkpoints (read as data, no code run) "
    "into a checkpoint folder (config.json + model.safetensors).",
    _configure_convert, _run_convert))
register_command(Command(
    "batch", "animate many audio lines (files, folders, lists, CSV) in parallel",
    "Generate one RESULT .npz per dialogue line; resumable, failures reported per line.",
    _configure_batch, _run_batch))
register_command(Command(
    "plot", "draw a result's curve plot (emotion curve, key channels) as a PNG",
    "Draw the emotion curve and the key mouth, brow and eye channels of a RESULT.npz with "
    "matplotlib.", _configure_plot, _run_plot))


# ---------------------------------------------------------------------------------------------
# shared plumbing


class _ArgError(EmoteInputError):
    """A command-line usage problem found after parsing (reported as bad_request)."""

    def __init__(self, message: str):
        super().__init__("bad_request", message)


@dataclass
class _Session:
    """One command's progress reporter, done reporting and exit code."""

    report: Callable[[str, int, int], None]
    finish: Callable[[dict, str], None]
    exit_code: int = EXIT_OK


@contextlib.contextmanager
def _session(mode: str):
    """Run the body with a progress reporter; turn exceptions into one error report + exit code.

    In jsonl mode stdout carries only protocol lines: stray prints go to stderr meanwhile.
    """
    jsonl = mode == "jsonl"
    out = sys.stdout
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    report = jsonl_progress(out) if jsonl else bar_progress() if mode == "bar" else no_progress

    def finish(event: dict, text: str) -> None:
        if jsonl:
            emit(out, event)
        else:
            print(text, file=out, flush=True)

    def warn(text: str) -> None:
        if jsonl:
            emit(out, {"event": "warning", "message": text})
        else:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    session = _Session(report, finish)
    redirect = contextlib.redirect_stdout(sys.stderr) if jsonl else contextlib.nullcontext()
    try:
        with redirect, warnings_to(warn):
            yield session
    except EmoteInputError as exc:  # _ArgError included
        _report_error(jsonl, exc.kind, exc.message, out)
        session.exit_code = EXIT_INPUT
    except KeyboardInterrupt:
        _report_error(jsonl, "cancelled", "Cancelled.", out)
        session.exit_code = 130
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        _report_error(jsonl, "internal",
                      INTERNAL_MESSAGE.format(error=f"{type(exc).__name__}: {exc}"), out)
        session.exit_code = EXIT_INTERNAL


def _report_error(jsonl: bool, kind: str, message: str, out=None) -> None:
    if jsonl:
        emit(out or sys.stdout, {"event": "error", "kind": kind, "message": message})
    else:
        print(f"error ({kind}): {message}", file=sys.stderr, flush=True)


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _strength(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"{text} is not a strength between 0 and 2")
    return value


def _smoothing(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.25:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds from 0 to 0.25")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m model_runtime",
        description="EMOTE runtime: speech audio to FLAME-format facial animation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  python -m model_runtime generate line.wav --emotion happy --intensity 0.7 "
               "--fps 30 -o line.npz\n"
               "  python -m model_runtime generate --request req.json --out result.npz "
               "--progress jsonl\n"
               "Run `python -m model_runtime COMMAND --help` for a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.configure(p)
        p.set_defaults(_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen subcommand; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return args._command.run(args)
