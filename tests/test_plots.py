"""The curve plot (model_runtime/plots.py, `python -m model_runtime plot`): what it shows, a real
PNG drawn with matplotlib, and a clear error (not a crash) in a runtime without matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emote.model_runtime import plots
from emote.model_runtime.emotions import EMOTIONS
from emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

ROOT = Path(__file__).resolve().parents[1]
FPS, T = 25.0, 153


def demo_curve():
    """neutral -> happy -> surprised keys (as `./run demo`), intensity 0.7: 3 of 8 emotions."""
    w = np.zeros((T, len(EMOTIONS)))
    t = np.arange(T) / FPS
    happy = np.clip((t - 2.0) / 0.4, 0, 1)
    surprised = np.clip((t - 4.0) / 0.4, 0, 1)
    w[:, EMOTIONS.index("neutral")] = 1 - happy
    w[:, EMOTIONS.index("happy")] = happy - surprised
    w[:, EMOTIONS.index("surprised")] = surprised
    return w, np.full(T, 0.7)


def result_arrays(names=OPEN_HEAD_CHANNELS, head=True):
    rng = np.random.default_rng(0)
    exp = rng.uniform(-0.1, 0.8, (T, len(names)))
    jaw = np.column_stack([rng.uniform(0, 0.2, T), np.zeros((T, 2))])
    life = {}
    if head:
        life = {"head": np.radians(np.column_stack([np.sin(np.arange(T) / 9.0) * 3,
                                                    np.zeros(T), np.zeros(T)])),
                "gaze": np.zeros((T, 2))}
    return exp, jaw, list(names), life


def demo_plot(**kw) -> plots.CurvePlot:
    w, intensity = demo_curve()
    exp, jaw, names, life = result_arrays()
    args = dict(emotion_names=EMOTIONS, emotion_weights=w, intensity=intensity,
                keys=[("neutral", 0.0), ("happy", 2.0), ("surprised", 4.0)], first_frame=1,
                **life)
    args.update(kw)
    return plots.curve_plot_data(FPS, exp, names, jaw, **args)


def labels_of(plot: plots.CurvePlot, title: str) -> list[str]:
    return [s.label for p in plot.panels if p.title == title for s in p.series]


def test_legend_lists_only_the_emotions_the_curve_uses():
    plot = demo_plot()
    assert [s.label for s in plot.emotions] == ["neutral", "happy", "surprised"]
    assert plot.intensity is not None and np.allclose(plot.intensity, 0.7)
    fig = plots.build_figure(plot)  # the drawn legend says the same
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["neutral", "happy", "surprised", "intensity"]


def test_channels_are_labelled_with_the_names_they_have_in_blender():
    # The main job passes the head's shape-key and bone names (curve_plot.labels_for).
    plot = demo_plot(labels={"mouthSmile_L": "mouthSmileLeft", "jawOpen": "jawOpen",
                             "jaw": "jaw bone rotation (rad)"})
    mouth = labels_of(plot, "Mouth and jaw")
    assert mouth[0] == "jaw bone rotation (rad)"
    assert "mouthSmileLeft" in mouth and "mouthSmile_L" not in mouth
    assert {"jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthFrown_L"} <= set(mouth)
    assert labels_of(plot, "Brows") == ["browInnerUp", "browOuterUp_L", "browOuterUp_R",
                                        "browDown_L", "browDown_R"]
    assert labels_of(plot, "Eyelids")[:2] == ["eyeBlink_L", "eyeBlink_R"]
    assert not any(label.isupper() for p in plot.panels for s in p.series
                   for label in [s.label])  # spelled as named, never upper-cased
    fig = plots.build_figure(plot)
    drawn = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert drawn == mouth


def test_other_spellings_and_flame_results_still_get_panels():
    exp, jaw, _n, _life = result_arrays()
    rpm = [n.replace("_L", "Left").replace("_R", "Right") for n in OPEN_HEAD_CHANNELS]
    plot = plots.curve_plot_data(FPS, exp, rpm, jaw)
    assert "mouthSmileLeft" in labels_of(plot, "Mouth and jaw")
    assert "eyeBlinkRight" in labels_of(plot, "Eyelids")
    flame = [f"exp_{i:03d}" for i in range(50)]
    plot = plots.curve_plot_data(FPS, np.zeros((T, 50)), flame, jaw)
    assert labels_of(plot, "Mouth and jaw") == ["jaw rotation (rad)", "exp_000", "exp_001",
                                                "exp_002"]
    assert labels_of(plot, "Brows") == ["exp_003", "exp_004", "exp_005"]
    assert "Eyelids" not in [p.title for p in plot.panels]
    assert plot.emotions == [] and plot.intensity is None


def test_head_and_gaze_panel_only_when_they_move():
    plot = demo_plot()
    assert labels_of(plot, "Head and gaze") == ["head nod (x)"]  # the only moving track
    still = demo_plot(head=np.zeros((T, 3)), gaze=np.zeros((T, 2)))
    assert "Head and gaze" not in [p.title for p in still.panels]


@pytest.mark.parametrize("frames, fps, first", [(153, 25.0, 1), (30, 30.0, 1), (2401, 24.0, 101),
                                               (900, 29.97, 1)])
def test_time_ticks_are_round(frames, fps, first):
    exp = np.zeros((frames, 3))
    plot = plots.curve_plot_data(fps, exp, ["a", "b", "c"], first_frame=first)
    seconds, frame_ticks = plots.time_ticks(plot)
    end = (frames - 1) / fps
    assert seconds[0] == 0 and seconds[-1] <= end + 1e-9 and 4 <= len(seconds) <= 12
    for ticks in (seconds, frame_ticks):
        step = float(np.diff(ticks)[0])
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert round(mantissa, 6) in (1.0, 2.0, 5.0), ticks
        assert np.allclose(ticks / step, np.round(ticks / step)), ticks  # multiples of the step
    assert frame_ticks[0] >= first and frame_ticks[-1] <= first + frames - 1
    assert np.all(frame_ticks == np.round(frame_ticks))


def test_mismatched_curve_is_refused_in_words():
    w, intensity = demo_curve()
    exp, jaw, names, _life = result_arrays()
    with pytest.raises(plots.EmoteInputError, match="does not match the result's 153 frames"):
        plots.curve_plot_data(FPS, exp, names, jaw, EMOTIONS, w[:100], intensity)


def write_inputs(folder: Path) -> tuple[Path, Path]:
    exp, jaw, names, life = result_arrays()
    result = folder / "result.npz"
    np.savez(result, fps=np.float64(FPS), exp=exp.astype(np.float32),
             jaw=jaw.astype(np.float32), exp_names=np.array(names), **life)
    w, intensity = demo_curve()
    request = folder / "request.json"
    request.write_text(json.dumps({"emotion": {"names": list(EMOTIONS), "weights": w.tolist()},
                                   "intensity": intensity.tolist(), "fps": FPS}))
    return result, request


def run_plot(folder: Path, out: Path, env_extra: dict | None = None):
    result, request = write_inputs(folder)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [*(env_extra or {}).get("first", []), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "model_runtime", "plot", str(result),
                           "--request", str(request), "--out", str(out), "--key", "happy:2",
                           "--title", "demo line", "--first-frame", "1", "--progress", "jsonl"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=str(folder))


def test_plot_command_draws_a_real_png(tmp_path):
    out = tmp_path / "curves.png"
    proc = run_plot(tmp_path, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"event": "done", "out": str(out)}
    from matplotlib.image import imread

    img = imread(out)[..., :3]
    h, w = img.shape[:2]
    assert w == 1400 and 800 < h < 2000, img.shape
    assert img.std() > 0.1  # not blank
    colours = np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100  # lines, areas, antialiased text
    assert not list(tmp_path.glob(".curves.png.*"))  # no temporary left beside it


def hide_matplotlib(folder: Path) -> Path:
    """A folder whose sitecustomize makes `import matplotlib` fail, as in a runtime set up
    before matplotlib was pinned."""
    site = folder / "no_matplotlib"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
    return site


def test_runtime_without_matplotlib_says_so_and_writes_nothing(tmp_path):
    out = tmp_path / "curves.png"
    proc = run_plot(tmp_path, out, {"first": [str(hide_matplotlib(tmp_path))]})
    assert proc.returncode == 2, proc.stderr[-2000:]
    event = json.loads(proc.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and event["kind"] == "missing_dependency"
    assert "matplotlib is not installed" in event["message"]
    assert plots.MATPLOTLIB_PIN in event["message"]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".curves.png.*"))


def test_matplotlib_pin_is_the_runtime_requirement():
    pins = (ROOT / "model_runtime" / "requirements.txt").read_text().split()
    assert plots.MATPLOTLIB_PIN in pins
    assert plots.MATPLOTLIB_PIN in (ROOT / "requirements-dev.txt").read_text().split()


def test_blender_side_labels_are_the_heads_key_and_bone_names():
    from emote.emote_blender import curve_plot
    from emote.emote_blender.channels import match_channels

    names = list(OPEN_HEAD_CHANNELS)
    rpm_keys = [n.replace("_L", "Left").replace("_R", "Right") for n in names]  # another rig
    labels = curve_plot.labels_for(match_channels(names, rpm_keys, ["jaw", "head"]), names)
    assert labels["mouthSmile_L"] == "mouthSmileLeft"
    assert labels["eyeBlink_R"] == "eyeBlinkRight"
    assert labels["jaw"] == "jaw bone rotation (rad)"
    no_bone = curve_plot.labels_for(match_channels(names, rpm_keys, []), names)
    assert no_bone["jaw"] == "jaw rotation (rad), drives jawOpen"


def test_blender_side_draw_fails_soft_in_words(tmp_path):
    """The main job's call: a runtime that cannot run the plot gives a warning, never raises."""
    from emote.emote_blender import curve_plot

    result, request = write_inputs(tmp_path)
    png, warning = curve_plot.draw(tmp_path / "no_python", result, json.loads(
        request.read_text()), tmp_path / "curves.png", tmp_path)
    assert png is None and "could not be started for the curve plot" in warning
    png, warning = curve_plot.draw(sys.executable, tmp_path / "missing.npz", {}, tmp_path / "c.png",
                                   tmp_path)
    assert png is None and "Result file not found" in warning
    png, warning = curve_plot.draw(sys.executable, result, json.loads(request.read_text()),
                                   tmp_path / "curves.png", tmp_path, {"mouthSmile_L": "smile"},
                                   [("happy", 2.0)], "t", 1)
    assert png == tmp_path / "curves.png" and png.is_file() and warning == ""
