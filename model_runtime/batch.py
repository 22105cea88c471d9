"""Batch generation for dialogue volumes: many audio lines in, one RESULT.npz per line out.

Inputs are audio files, folders of them, list files (one path per line) or CSV files with per-line
emotion, intensity, style and name. Lines already done are skipped (resumable); a failing line is
reported and the rest go on. Work is spread over processes, one torch thread each.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from model_runtime.errors import EmoteInputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
REPORT_NAME = "batch_report.csv"


@dataclass
class BatchLine:
    """One line of dialogue to generate."""

    name: str
    audio: str
    emotion: str = "neutral"
    intensity: float = 1.0
    style: str | None = None
    start_s: float = 0.0
    end_s: float | None = None


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep.strip("._") or "line"


def collect_lines(inputs: list[str], emotion: str = "neutral", intensity: float = 1.0,
                  style: str | None = None) -> list[BatchLine]:
    """Expand files, folders, list files and CSV files into batch lines (unique names)."""
    lines: list[BatchLine] = []

    def add_audio(path: Path, base: Path | None = None) -> None:
        rel = path.relative_to(base) if base else Path(path.name)
        name = _safe_name(str(rel.with_suffix("")).replace(os.sep, "__"))
        lines.append(BatchLine(name, str(path.resolve()), emotion, intensity, style))

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file():
                    add_audio(f, p)
        elif p.suffix.lower() == ".csv":
            lines.extend(_read_csv(p, emotion, intensity, style))
        elif p.suffix.lower() in {".txt", ".lst", ".list"}:
            for raw in p.read_text(encoding="utf-8").splitlines():
                raw = raw.strip()
                if raw and not raw.startswith("#"):
                    f = Path(raw) if Path(raw).is_absolute() else p.parent / raw
                    add_audio(f)
        elif p.suffix.lower() in AUDIO_SUFFIXES or p.exists():
            add_audio(p)
        else:
            raise EmoteInputError("missing_file", f"Batch input not found: {p}. Give audio files, "
                                  "folders, .txt lists or .csv files that exist.")
    seen: dict[str, int] = {}
    for line in lines:  # names must be unique: they are the output file names
        n = seen.get(line.name, 0)
        seen[line.name] = n + 1
        if n:
            line.name = f"{line.name}_{n + 1}"
    return lines


def _read_csv(path: Path, emotion: str, intensity: float, style: str | None) -> list[BatchLine]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "audio" not in reader.fieldnames:
            raise EmoteInputError("bad_request", f"{path} has no 'audio' column. A batch CSV needs a "
                                  "header with 'audio' and optionally name, emotion, intensity, "
                                  "style, start, end.")
        out = []
        for row_no, row in enumerate(reader, start=2):
            audio = Path(row["audio"].strip())
            if not audio.is_absolute():
                audio = path.parent / audio
            try:
                out.append(BatchLine(
                    name=_safe_name(row.get("name") or audio.stem),
                    audio=str(audio.resolve()),
                    emotion=(row.get("emotion") or emotion).strip(),
                    intensity=float(row.get("intensity") or intensity),
                    style=(row.get("style") or style or None),
                    start_s=float(row.get("start") or 0.0),
                    end_s=float(row["end"]) if row.get("end") else None,
                ))
            except ValueError as exc:
                raise EmoteInputError("bad_request", f"{path}, line {row_no}: {exc}. Intensity, "
                                      "start and end must be numbers.") from None
        return out


def make_request(line: BatchLine, fps: float, model: str, n_samples_16k: int) -> dict:
    """A runtime request (DESIGN.md contract) for one line with a constant emotion."""
    from model_runtime.conditions import EMOTIONS

    if line.emotion not in EMOTIONS:
        raise EmoteInputError("bad_request", f"Unknown emotion {line.emotion!r} for line "
                              f"{line.name!r}. Use one of: {', '.join(EMOTIONS)}.")
    duration = n_samples_16k / 16000.0
    frames = max(1, int(math.floor(duration * fps + 0.5)))
    end = line.end_s if line.end_s is not None else None
    return {
        "audio": line.audio, "audio_start_s": line.start_s, "audio_end_s": end,
        "fps": fps, "frame_count": frames, "model": model, "identity": line.style,
        "emotion": {"names": [line.emotion], "weights": [[1.0]] * frames},
        "intensity": [float(line.intensity)] * frames,
    }


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _run_line(line: BatchLine, out_dir: str, fps: float, model: str) -> dict:
    """Generate one line in a worker; never raises, returns a report row."""
    from model_runtime.audio import load_audio
    from model_runtime.inference import run_request

    t0 = time.perf_counter()
    out = Path(out_dir) / f"{line.name}.npz"
    try:
        samples = load_audio(line.audio, line.start_s, line.end_s)
        run_request(make_request(line, fps, model, len(samples)), out)
        status, kind, message = "done", "", ""
    except EmoteInputError as exc:
        status, kind, message = "error", exc.kind, exc.message
    except Exception as exc:  # one broken line must not stop the batch
        status, kind, message = "error", "internal", f"{type(exc).__name__}: {exc}"
    return {"name": line.name, "audio": line.audio, "status": status, "kind": kind,
            "message": message, "seconds": round(time.perf_counter() - t0, 3), "out": str(out)}


def run_batch(lines: list[BatchLine], out_dir: str | Path, fps: float = 30.0, model: str = "default",
              jobs: int | None = None, progress=None) -> list[dict]:
    """Generate every line not yet done; append to the report; return this run's rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [ln for ln in lines if not (out_dir / f"{ln.name}.npz").exists()]
    skipped = len(lines) - len(todo)
    rows: list[dict] = []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        # A first load here turns a missing model into one clear error instead of N line errors.
        from model_runtime.checkpoints import load_checkpoint

        load_checkpoint(model)
    if progress:
        progress(0, len(todo), skipped)
    if todo:
        import multiprocessing as mp

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            futures = [pool.submit(_run_line, ln, str(out_dir), fps, model) for ln in todo]
            for fut in as_completed(futures):
                rows.append(fut.result())
                _append_report(out_dir / REPORT_NAME, rows[-1])
                if progress:
                    progress(len(rows), len(todo), skipped, rows[-1])
    return rows


def _append_report(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def main(args) -> int:
    """Entry of `python -m model_runtime batch` (arguments parsed by cli.py)."""
    lines = collect_lines(args.inputs, args.emotion, args.intensity, args.style)
    if not lines:
        raise EmoteInputError("bad_request", "No audio lines found in the batch inputs. Give audio "
                              "files, folders with .wav/.flac/.ogg/.mp3, .txt lists or .csv files.")
    is_tty = sys.stderr.isatty()
    t0 = time.perf_counter()

    def progress(done, total, skipped, row=None):
        if row and row["status"] != "done":
            print(f"\nline {row['name']!r} failed ({row['kind']}): {row['message']}", file=sys.stderr)
        if args.progress == "jsonl":
            print(json.dumps({"event": "progress", "stage": "batch", "done": done, "total": total}),
                  flush=True)
        elif is_tty or done == total:
            rate = done / max(time.perf_counter() - t0, 1e-9) * 60
            bar = "#" * int(30 * done / max(total, 1))
            print(f"\r[{bar:<30}] {done}/{total} lines  {rate:.0f} lines/min  ({skipped} already done)",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)

    rows = run_batch(lines, args.out, args.fps, args.model, args.jobs, progress)
    failed = [r for r in rows if r["status"] != "done"]
    elapsed = time.perf_counter() - t0
    summary = {"event": "done", "out": str(args.out), "lines": len(lines), "generated": len(rows) - len(failed),
               "failed": len(failed), "skipped": len(lines) - len(rows),
               "seconds": round(elapsed, 2),
               "lines_per_minute": round((len(rows) / elapsed * 60) if rows else 0.0, 1),
               "report": str(Path(args.out) / REPORT_NAME)}
    print(json.dumps(summary), flush=True)
    return 3 if failed else 0


def line_as_dict(line: BatchLine) -> dict:
    return asdict(line)
