"""The take's curve plot, drawn by the runtime (`python -m model_runtime plot`, matplotlib).

Blender's own Python need not have matplotlib (and never imports torch), so the plot is drawn in
the runtime's interpreter, like Generate. The plot is an extra: when it cannot be drawn (no
matplotlib in a runtime set up before it was pinned, a crash) `draw` returns a warning in words
and the caller carries on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

PLOT_TIMEOUT_S = 180.0


def labels_for(cmap, exp_names: list[str]) -> dict[str, str]:
    """Model channel name -> the name the animator sees in Blender (shape key, jaw bone).

    A channel that drives one key directly shows that key's name; one that only feeds a mixed key
    (a CC4 quarter, a VRM preset) shows the first such key; others keep the model's name."""
    labels = {exp_names[col]: key for col, key in cmap.shape_keys.items()
              if 0 <= col < len(exp_names)}
    for key, terms in cmap.mixes.items():
        for col, _w in terms:
            if 0 <= col < len(exp_names):
                labels.setdefault(exp_names[col], key)
    if cmap.jaw_bone:
        labels["jaw"] = f"{cmap.jaw_bone} bone rotation (rad)"
    elif cmap.jaw_open_key:
        labels["jaw"] = f"jaw rotation (rad), drives {cmap.jaw_open_key}"
    return labels


def plot_command(python: str | Path, result_path: Path, request_path: Path, out_png: Path,
                 labels_path: Path | None, keys, title: str, first_frame: int) -> list[str]:
    cmd = [str(python), "-m", "model_runtime", "plot", str(result_path), "--out", str(out_png),
           "--request", str(request_path), "--title", title, "--first-frame", str(first_frame),
           "--progress", "jsonl"]
    if labels_path is not None:
        cmd += ["--labels", str(labels_path)]
    for name, sec in keys:
        cmd += ["--key", f"{name}:{float(sec):g}"]
    return cmd


def draw(python: str | Path, result_path: str | Path, request: dict, out_png: str | Path,
         work_dir: str | Path, labels: dict[str, str] | None = None, keys=(), title: str = "",
         first_frame: int = 0, timeout_s: float = PLOT_TIMEOUT_S) -> tuple[Path | None, str]:
    """Draw the curve plot of `result_path` with the runtime; (the PNG, "") or (None, warning).

    Never raises for a plot that could not be drawn: the warning says why, in words."""
    from .runtime_env import runtime_env

    work = Path(work_dir)
    request_path = work / "plot_request.json"
    request_path.write_text(json.dumps(request), "utf-8")
    labels_path = None
    if labels:
        labels_path = work / "plot_labels.json"
        labels_path.write_text(json.dumps(labels), "utf-8")
    cmd = plot_command(python, Path(result_path), request_path, Path(out_png), labels_path, keys,
                       title, first_frame)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=runtime_env(python), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"the curve plot took over {timeout_s:g} s and was stopped"
    except OSError as exc:
        return None, f"the runtime {python} could not be started for the curve plot ({exc})"
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    done = [e for e in events if isinstance(e, dict) and e.get("event") == "done"]
    if proc.returncode == 0 and done and Path(out_png).is_file():
        return Path(out_png), ""
    errors = [e for e in events if isinstance(e, dict) and e.get("event") == "error"]
    if errors:
        return None, str(errors[-1].get("message", "")).strip() or "the curve plot failed"
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return None, (f"the curve plot failed (exit code {proc.returncode}"
                  + (f": {tail[-1].strip()}" if tail else "") + ")")
