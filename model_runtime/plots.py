"""The curve plot of a take: the emotion curve above the key mouth, brow and eye channels.

`python -m model_runtime plot RESULT.npz --request REQ.json --out curves.png` draws it with
matplotlib (Agg, no display needed), in the runtime's interpreter: Blender's own Python may have
no matplotlib. `curve_plot_data` decides what is drawn (pure numpy: which emotions reach the
legend, each line's label, the time ticks) and `render_curve_plot` only draws it, so tests can
check the content without reading pixels. The PNG is written atomically (safe_write).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EmoteInputError

# Colours (matplotlib colour strings), one per EMOTE emotion (model_runtime/emotions.py).
EMOTION_COLOURS = {
    "neutral": "#aaaaaa", "happy": "#f0be28", "sad": "#466ec8", "surprised": "#e678c8",
    "fear": "#8250aa", "disgusted": "#5aa03c", "angry": "#d23228", "contempt": "#966e46",
}
# The channels each panel shows when the result has them (model channel names, ARKit style).
PANELS = (
    ("Mouth and jaw", ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmile_L",
                       "mouthFrown_L")),
    ("Brows", ("browInnerUp", "browOuterUp_L", "browOuterUp_R", "browDown_L", "browDown_R")),
    ("Eyelids", ("eyeBlink_L", "eyeBlink_R", "eyeWide_L", "eyeSquint_L")),
)
# Columns shown instead when a result names none of a panel's channels (a FLAME model's
# expression coefficients): the first three for the first panel, the next three for the second.
FALLBACK_COLUMNS = (range(0, 3), range(3, 6), range(0, 0))
USED_WEIGHT = 1e-3  # an emotion whose weight never reaches this is not in the legend
MATPLOTLIB_PIN = "matplotlib==3.11.2"  # as in model_runtime/requirements.txt


@dataclass
class Series:
    """One line of a panel: its label (as the animator sees it in Blender) and values."""

    label: str
    values: np.ndarray


@dataclass
class Panel:
    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)


@dataclass
class CurvePlot:
    """Everything the figure shows, decided before drawing."""

    title: str
    fps: float
    first_frame: int
    seconds: np.ndarray  # (T,) time of each frame from the start of the line
    emotions: list[Series]  # only the emotions the curve uses, in EMOTE's order
    intensity: np.ndarray | None
    panels: list[Panel]
    keys: list[tuple[str, float]]  # (emotion, seconds) keyframes drawn as marks


def _match_key(name: str) -> str:
    """Spelling-blind form of a channel name (mouthSmile_L, mouthSmileLeft, MouthSmile_l)."""
    n = name.lower().replace("_", "").replace(".", "")
    for long, short in (("left", "l"), ("right", "r")):
        if n.endswith(long):
            n = n[:-len(long)] + short
    return n


def pick_columns(exp_names: list[str], wanted: tuple[str, ...], fallback: range) -> list[int]:
    """Columns of the wanted channels present in the result, else the fallback columns."""
    index: dict[str, int] = {}
    for i, n in enumerate(exp_names):
        index.setdefault(_match_key(n), i)
    got = [index[_match_key(w)] for w in wanted if _match_key(w) in index]
    return got or [i for i in fallback if i < len(exp_names)]


def used_emotions(names, weights: np.ndarray) -> list[int]:
    """Indices of the emotions whose weight reaches USED_WEIGHT somewhere in the curve."""
    w = np.asarray(weights, dtype=np.float64)
    return [e for e in range(min(len(names), w.shape[1] if w.ndim == 2 else 0))
            if float(w[:, e].max(initial=0.0)) >= USED_WEIGHT]


def curve_plot_data(fps: float, exp: np.ndarray, exp_names: list[str],
                    jaw: np.ndarray | None = None, emotion_names=(),
                    emotion_weights: np.ndarray | None = None,
                    intensity: np.ndarray | None = None, labels: dict[str, str] | None = None,
                    keys=(), head: np.ndarray | None = None, gaze: np.ndarray | None = None,
                    title: str = "", first_frame: int = 0) -> CurvePlot:
    """What the curve plot shows for a result (and the request's emotion curve, when given).

    `labels` maps a model channel name to the name it has in Blender (the head's shape key), and
    "jaw" to the jaw line's label (naming its bone); channels without an entry keep the model's
    name. Head and gaze rows are shown
    (in degrees) only when they move.
    """
    exp = np.asarray(exp, dtype=np.float64)
    names = [str(n) for n in exp_names]
    if exp.ndim != 2 or exp.shape[1] != len(names):
        raise EmoteInputError("bad_request", f"exp {exp.shape} does not fit {len(names)} channel "
                              "names; give a RESULT.npz written by `generate`.")
    T = exp.shape[0]
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    emotions: list[Series] = []
    if emotion_weights is not None:
        w = np.asarray(emotion_weights, dtype=np.float64)
        if w.shape != (T, len(emotion_names)):
            raise EmoteInputError("bad_request", f"the emotion curve {w.shape} does not match the "
                                  f"result's {T} frames x {len(emotion_names)} emotions; give "
                                  "the request that made this result.")
        emotions = [Series(str(emotion_names[e]), w[:, e]) for e in used_emotions(
            emotion_names, w)]
    if intensity is not None:
        intensity = np.asarray(intensity, dtype=np.float64).reshape(-1)
        if intensity.shape != (T,):
            raise EmoteInputError("bad_request", f"the intensity track has {intensity.size} "
                                  f"values, the result {T} frames.")
    panels = []
    for (title_, wanted), fallback in zip(PANELS, FALLBACK_COLUMNS):
        cols = pick_columns(names, wanted, fallback)
        panel = Panel(title_, "weight", [Series(labels.get(names[c], names[c]), exp[:, c])
                                         for c in cols])
        if title_ == "Mouth and jaw" and jaw is not None:
            jaw = np.asarray(jaw, dtype=np.float64)
            panel.series.insert(0, Series(labels.get("jaw", "jaw rotation (rad)"), jaw[:, 0]))
            panel.ylabel = "weight, radians"
        if panel.series:
            panels.append(panel)
    life = Panel("Head and gaze", "degrees")
    for arr, parts in ((head, ("head nod (x)", "head turn (y)", "head tilt (z)")),
                       (gaze, ("gaze yaw", "gaze pitch"))):
        if arr is None:
            continue
        arr = np.degrees(np.asarray(arr, dtype=np.float64))
        life.series += [Series(p, arr[:, i]) for i, p in enumerate(parts)
                        if i < arr.shape[1] and np.ptp(arr[:, i]) > 1e-3]
    if life.series:
        panels.append(life)
    return CurvePlot(title or "Emotion curve and key channels", float(fps), int(first_frame),
                     np.arange(T) / float(fps), emotions, intensity, panels,
                     [(str(n), float(s)) for n, s in keys])


def round_step(span: float, target_ticks: int = 8) -> float:
    """A 1, 2 or 5 times a power of ten step giving about `target_ticks` ticks over `span`."""
    raw = span / target_ticks if span > 0 else 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))


def time_ticks(plot: CurvePlot) -> tuple[np.ndarray, np.ndarray]:
    """Round tick values: seconds (bottom axis) and scene frames (top axis)."""
    end = float(plot.seconds[-1]) if plot.seconds.size else 0.0
    step = round_step(end)
    seconds = np.arange(0.0, end + step * 1e-6, step)
    last_frame = plot.first_frame + max(plot.seconds.size - 1, 0)
    fstep = max(1.0, round_step(last_frame - plot.first_frame))
    frames = np.arange(math.ceil(plot.first_frame / fstep) * fstep, last_frame + 1e-6, fstep)
    return np.round(seconds, 10), frames


def _matplotlib():
    """matplotlib with the Agg backend (no display), or missing_dependency in words."""
    try:
        import matplotlib
    except ImportError:
        raise EmoteInputError(
            "missing_dependency", f"matplotlib is not installed in the runtime ({sys.executable})"
            f", so no curve plot was drawn. Install it there (pip install {MATPLOTLIB_PIN}) or "
            "press Repair under 'Set up runtime'.") from None
    matplotlib.use("Agg", force=True)
    return matplotlib


def build_figure(plot: CurvePlot, width_px: int = 1400, dpi: int = 100):
    """The matplotlib Figure of `plot`: the emotion curve on top, one panel per channel group,
    seconds below and scene frames above, both at round values. Needs matplotlib."""
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, MaxNLocator

    rows = 1 + len(plot.panels)
    heights = [1.3] + [1.0] * len(plot.panels)
    fig = Figure(figsize=(width_px / dpi, 1.2 + 2.1 * sum(heights)), dpi=dpi,
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, 1, sharex=True,
                                      gridspec_kw={"height_ratios": heights}))
    t = plot.seconds
    fig.suptitle(plot.title, fontsize=14, x=0.01, ha="left")

    ax = axes[0]
    if plot.emotions:
        ax.stackplot(t, *[s.values for s in plot.emotions], labels=[s.label for s in plot.emotions],
                     colors=[EMOTION_COLOURS.get(s.label, "#cccccc") for s in plot.emotions],
                     alpha=0.85, linewidth=0)
    if plot.intensity is not None:
        ax.plot(t, plot.intensity, color="black", linewidth=2, label="intensity")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mixture, intensity")
    ax.set_title("Emotion curve", loc="left", fontsize=11)
    for name, sec in plot.keys:
        for a in axes:
            a.axvline(sec, color="black", linestyle=":", linewidth=1)
        ax.annotate(name, (sec, 1.05), xytext=(3, -3), textcoords="offset points",
                    va="top", fontsize=9)

    for a, panel in zip(axes[1:], plot.panels):
        for s in panel.series:
            a.plot(t, s.values, linewidth=1.6, label=s.label)
        a.set_title(panel.title, loc="left", fontsize=11)
        a.set_ylabel(panel.ylabel)
        a.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))

    seconds, frames = time_ticks(plot)
    for a in axes:
        a.grid(True, color="#dddddd", linewidth=0.8)
        a.set_xlim(0, max(float(t[-1]) if t.size else 1.0, 1e-6))
        if a.get_legend_handles_labels()[0]:
            a.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, frameon=False)
    axes[-1].xaxis.set_major_locator(FixedLocator(seconds))
    axes[-1].set_xlabel("seconds from the start of the line")
    top = axes[0].secondary_xaxis(
        "top", functions=(lambda s: s * plot.fps + plot.first_frame,
                          lambda f: (f - plot.first_frame) / plot.fps))
    top.xaxis.set_major_locator(FixedLocator(frames))
    top.set_xlabel("frame")
    return fig


def render_curve_plot(plot: CurvePlot, out_path: str | Path, width_px: int = 1400,
                      dpi: int = 100) -> Path:
    """Draw `plot` as a PNG at `out_path` (replaced only when whole). Needs matplotlib."""
    from .safe_write import replacing

    fig = build_figure(plot, width_px, dpi)
    out = Path(out_path)
    with replacing(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return out


def plot_result(result_path: str | Path, out_path: str | Path, request: dict | None = None,
                labels: dict[str, str] | None = None, keys=(), title: str = "",
                first_frame: int = 0) -> Path:
    """Read RESULT.npz (and the request that made it) and draw its curve plot."""
    try:
        with np.load(result_path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise EmoteInputError("missing_file", f"Result file not found: {result_path}.") from None
    except (OSError, ValueError) as exc:
        raise EmoteInputError("unreadable_file", f"Cannot read {result_path} as a RESULT.npz "
                              f"({exc}).") from None
    for key in ("fps", "exp", "exp_names"):
        if key not in d:
            raise EmoteInputError("bad_request", f"{result_path} lacks '{key}': give a "
                                  "RESULT.npz written by `generate`.")
    emotion = (request or {}).get("emotion") or {}
    data = curve_plot_data(
        float(d["fps"]), d["exp"], [str(n) for n in d["exp_names"]], d.get("jaw"),
        emotion.get("names", ()), emotion.get("weights"), (request or {}).get("intensity"),
        labels, keys, d.get("head"), d.get("gaze"), title, first_frame)
    return render_curve_plot(data, out_path)


# --- the `plot` subcommand --------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", metavar="RESULT.npz", help="a result written by `generate`")
    p.add_argument("--out", "-o", required=True, metavar="PNG", help="the plot to write")
    p.add_argument("--request", metavar="REQ.json",
                   help="the request that made the result: adds its emotion curve and intensity")
    p.add_argument("--labels", metavar="LABELS.json",
                   help="JSON object: model channel name -> the name shown, such as the head's "
                        "shape key (\"jaw\": the jaw line's label)")
    p.add_argument("--key", action="append", default=[], metavar="EMOTION:SECONDS",
                   help="an emotion keyframe to mark (repeatable)")
    p.add_argument("--title", default="", help="the plot's title")
    p.add_argument("--first-frame", type=int, default=0,
                   help="scene frame of the result's first frame (the top axis). Default: 0")
    p.add_argument("--progress", choices=("jsonl", "none"), default="none",
                   help="jsonl: a JSON done/error line on stdout (for programs)")


def read_json(path: str | None, what: str):
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EmoteInputError("unreadable_file", f"Cannot read the {what} {path} ({exc}).") \
            from None


def keys_from_args(items) -> list[tuple[str, float]]:
    out = []
    for item in items:
        name, _sep, sec = str(item).rpartition(":")
        try:
            out.append((name, float(sec)))
        except ValueError:
            raise EmoteInputError("bad_request", f"--key {item!r} is not EMOTION:SECONDS "
                                  "(for example happy:2.0).") from None
    return out
