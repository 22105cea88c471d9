"""Batch generation for dialogue volumes: many audio lines in, one RESULT.npz per line out.

Inputs are audio files, folders of them, list files (one path per line) or CSV files with per-line
emotion, intensity, style and name. A failing line is reported and the rest go on. Work is spread
over processes, one torch thread each.

Resuming is never wrong: each result stores the settings that made it (audio file and its size
and time, model id and a hash of its files, fps, emotion, intensity, style, span), and a rerun
skips a line only when they match, redoing it (and saying so) otherwise. Each attempt also leaves
a small record in OUT/.emote_batch/, and the report is rebuilt from what is on disk after every
run: one row per line, never duplicated. Ctrl-C or SIGTERM stops the workers, writes the report
and a one-line summary, and exits 130; results are written atomically, so nothing half-written
remains.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import EmoteInputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
REPORT_NAME = "batch_report.csv"
RECORDS_DIR = ".emote_batch"  # one NAME.json per line: the last attempt's outcome and settings
SETTINGS_KEY = "batch_settings"  # JSON in each result .npz
REPORT_FIELDS = ("name", "audio", "status", "kind", "message", "seconds", "out")
EXIT_INTERRUPTED = 130


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
            for raw in p.read_text(encoding="utf-8-sig").splitlines():
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
    with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel's BOM is fine
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


def make_request(line: BatchLine, fps: float, model: str, n_samples_16k: int,
                 face: dict | None = None) -> dict:
    """A runtime request (DESIGN.md contract) for one line with a constant emotion; `face`
    adds its `alive` and `strengths` fields (cli.face_fields; absent: no blinks, gaze or head
    motion)."""
    from .conditions import EMOTIONS

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
        "intensity": [float(line.intensity)] * frames, **(face or {}),
    }


def model_fingerprint(model: str) -> tuple[str, str]:
    """(model id, sha256 over its config.json and model.safetensors) of "default" or a folder."""
    from .checkpoints import CONFIG_NAME, WEIGHTS_NAME, _resolve

    folder = _resolve(model)
    digest = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        with open(folder / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    model_id = "default" if str(model) == "default" else str(folder.resolve())
    return model_id, digest.hexdigest()


def line_settings(line: BatchLine, fps: float, model_id: str, model_hash: str,
                  face: dict | None = None) -> dict:
    """Everything that decides a line's result; a rerun with other settings redoes the line."""
    try:
        st = os.stat(line.audio)
        audio_stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        audio_stamp = None
    return {"audio": line.audio, "audio_size_mtime": audio_stamp, "model": model_id,
            "model_sha256": model_hash, "fps": float(fps), "emotion": line.emotion,
            "intensity": float(line.intensity), "style": line.style,
            "start_s": float(line.start_s), "end_s": None if line.end_s is None
            else float(line.end_s), **({"face": face} if face else {})}


def result_settings(path: Path) -> dict | None:
    """The settings stored in a batch result, or None (missing, unreadable, or made without)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            if SETTINGS_KEY not in z.files:
                return None
            return json.loads(str(z[SETTINGS_KEY]))
    except Exception:  # damaged or foreign file: treat as not done
        return None


def _record_path(out_dir: Path, name: str) -> Path:
    return out_dir / RECORDS_DIR / f"{name}.json"


def _read_record(out_dir: Path, name: str) -> dict | None:
    try:
        record = json.loads(_record_path(out_dir, name).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def line_state(line: BatchLine, out_dir: Path, settings: dict) -> tuple[str, dict | None]:
    """("done" | "changed" | "failed" | "todo", what is known) for a line, from disk only."""
    result = out_dir / f"{line.name}.npz"
    record = _read_record(out_dir, line.name)
    if result.exists():
        made_with = result_settings(result)
        if made_with == settings:
            return "done", record if record and record.get("settings") == settings else None
        if record and record.get("settings") == settings and record.get("status") == "error":
            return "failed", record
        return "changed", made_with or {}
    if record and record.get("settings") == settings and record.get("status") == "error":
        return "failed", record
    return "todo", None


def describe_change(old: dict, new: dict) -> str:
    """'fps 30 -> 60, emotion happy -> sad' (or why the old result cannot be compared)."""
    if not old:
        return "it records no settings (made by an older version or by hand)"
    parts = [f"{k} {old.get(k)} -> {new[k]}" for k in new if old.get(k) != new[k]
             and k not in ("model_sha256", "audio_size_mtime")]
    if old.get("model_sha256") != new["model_sha256"] and old.get("model") == new["model"]:
        parts.append("the model's files changed")
    if old.get("audio_size_mtime") != new["audio_size_mtime"] and old.get("audio") == new["audio"]:
        parts.append("the audio file changed")
    return ", ".join(parts) or "settings differ"


def _worker_init() -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: main decides
    torch.set_num_threads(1)


def _run_line(line: BatchLine, out_dir: str, fps: float, model: str, settings: dict) -> dict:
    """Generate one line in a worker; never raises, records the outcome, returns a report row."""
    import numpy as np

    from .audio import load_audio
    from .inference import run_request
    from .safe_write import write_text

    t0 = time.perf_counter()
    out = Path(out_dir) / f"{line.name}.npz"
    try:
        samples = load_audio(line.audio, line.start_s, line.end_s)
        run_request(make_request(line, fps, model, len(samples), settings.get("face")), out,
                    extra={SETTINGS_KEY: np.array(json.dumps(settings, sort_keys=True))})
        status, kind, message = "done", "", ""
    except EmoteInputError as exc:
        status, kind, message = "error", exc.kind, exc.message
    except Exception as exc:  # one broken line must not stop the batch
        status, kind, message = "error", "internal", f"{type(exc).__name__}: {exc}"
    seconds = round(time.perf_counter() - t0, 3)
    try:
        write_text(_record_path(Path(out_dir), line.name), json.dumps(
            {"status": status, "kind": kind, "message": message, "seconds": seconds,
             "settings": settings}))
    except EmoteInputError:
        pass  # the report then shows the line from its result alone
    return {"name": line.name, "audio": line.audio, "status": status, "kind": kind,
            "message": message, "seconds": seconds, "out": str(out)}


def _run_line_args(args: tuple) -> dict:
    return _run_line(*args)


class BatchInterrupted(Exception):
    """SIGINT or SIGTERM during a batch; `rows` are the lines finished before it."""

    def __init__(self, signum: int, rows: list[dict]):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.rows = signum, rows


def _raise_interrupt(signum, _frame):
    raise BatchInterrupted(signum, [])


def run_batch(lines: list[BatchLine], out_dir: str | Path, fps: float = 30.0, model: str = "default",
              jobs: int | None = None, progress=None, retry_failed: bool = False,
              say=None, face: dict | None = None) -> list[dict]:
    """Generate the lines that need it; rebuild the report; return this run's rows.

    Done lines (same settings) are skipped; lines whose result was made with other settings are
    redone; lines that failed with these settings are tried again, or with `retry_failed` only
    those. Raises BatchInterrupted (after stopping the workers and writing the report) on SIGINT
    or SIGTERM.
    """
    from .safe_write import clean_stale_temps

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .safe_write import cannot_write

        raise cannot_write(out_dir / REPORT_NAME, exc) from exc
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    model_id, model_hash = model_fingerprint(model)
    settings = {ln.name: line_settings(ln, fps, model_id, model_hash, face) for ln in lines}
    todo, changes = [], {}
    for ln in lines:
        clean_stale_temps(out_dir / f"{ln.name}.npz")  # left by a killed earlier run
        state, known = line_state(ln, out_dir, settings[ln.name])
        if state == "changed":
            changes.setdefault(describe_change(known, settings[ln.name]), []).append(ln.name)
        if retry_failed:  # only lines whose last attempt failed (even if the file was fixed)
            record = _read_record(out_dir, ln.name)
            if state != "done" and record and record.get("status") == "error":
                todo.append(ln)
        elif state != "done":
            todo.append(ln)
    for why, names in changes.items():
        if retry_failed:
            break
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        say(f"Redoing {len(names)} line(s) whose result was made with other settings ({why}): "
            f"{shown}.")
    skipped = len(lines) - len(todo)
    rows: list[dict] = []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        # A first load here turns a broken model into one clear error instead of N line errors.
        from .checkpoints import load_checkpoint

        load_checkpoint(model)
    if progress:
        progress(0, len(todo), skipped)
    old_handlers = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    pool = None
    try:
        if todo:
            import multiprocessing as mp

            pool = mp.get_context("spawn").Pool(jobs, initializer=_worker_init)
            work = [(ln, str(out_dir), fps, model, settings[ln.name]) for ln in todo]
            for row in pool.imap_unordered(_run_line_args, work):
                rows.append(row)
                if progress:
                    progress(len(rows), len(todo), skipped, row)
            pool.close()
            pool.join()
            pool = None
    except BatchInterrupted as exc:
        exc.rows = rows
        raise
    finally:
        for s, handler in old_handlers.items():
            signal.signal(s, handler)
        if pool is not None:  # interrupted or failed: stop the workers before anything else
            pool.terminate()
            pool.join()
            for ln in todo:
                clean_stale_temps(out_dir / f"{ln.name}.npz")
        write_report(lines, out_dir, settings)
    return rows


def report_rows(lines: list[BatchLine], out_dir: Path, settings: dict) -> list[dict]:
    """One report row per line, from the results and records on disk."""
    rows = []
    for ln in lines:
        state, known = line_state(ln, out_dir, settings[ln.name])
        record = known if state in ("done", "failed") and known else {}
        status = {"done": "done", "failed": "error", "changed": "not done",
                  "todo": "not done"}[state]
        rows.append({"name": ln.name, "audio": ln.audio, "status": status,
                     "kind": record.get("kind", "") if status == "error" else "",
                     "message": record.get("message", "") if status == "error" else "",
                     "seconds": record.get("seconds", ""),
                     "out": str(out_dir / f"{ln.name}.npz") if status == "done" else ""})
    return rows


def write_report(lines: list[BatchLine], out_dir: Path, settings: dict) -> list[dict]:
    """Rewrite OUT/batch_report.csv (atomically) from disk; returns its rows."""
    from .safe_write import write_text

    rows = report_rows(lines, out_dir, settings)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(REPORT_FIELDS))
    w.writeheader()
    w.writerows(rows)
    write_text(out_dir / REPORT_NAME, buf.getvalue())
    return rows


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

    retry = bool(getattr(args, "retry_failed", False))
    try:
        from .cli import face_fields

        rows = run_batch(lines, args.out, args.fps, args.model, args.jobs, progress,
                         retry_failed=retry, face=face_fields(args))
    except (BatchInterrupted, KeyboardInterrupt) as exc:
        rows = getattr(exc, "rows", [])
        status = _final_status(lines, args)
        why = exc.args[0] if isinstance(exc, BatchInterrupted) else "SIGINT"
        text = (f"Interrupted ({why}): {status['done']} of {len(lines)} lines done, "
                f"{status['error']} failed, {status['not done']} not done; rerun the same "
                f"command to finish. Report: {Path(args.out) / REPORT_NAME}")
        if args.progress == "jsonl":
            print(json.dumps({"event": "error", "kind": "cancelled", "message": text,
                              "lines": len(lines), "generated": sum(r["status"] == "done"
                                                                    for r in rows),
                              **{k.replace(" ", "_"): v for k, v in status.items()}}),
                  flush=True)
        print(("\n" if is_tty else "") + text, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    failed = [r for r in rows if r["status"] != "done"]
    elapsed = time.perf_counter() - t0
    status = _final_status(lines, args)
    summary = {"event": "done", "out": str(args.out), "lines": len(lines),
               "generated": len(rows) - len(failed), "failed": len(failed),
               "skipped": len(lines) - len(rows), "failed_total": status["error"],
               "not_done": status["not done"], "seconds": round(elapsed, 2),
               "lines_per_minute": round((len(rows) / elapsed * 60) if rows else 0.0, 1),
               "report": str(Path(args.out) / REPORT_NAME)}
    print(json.dumps(summary), flush=True)
    return 3 if status["error"] else 0


def _final_status(lines: list[BatchLine], args) -> dict:
    """How many lines are done / failed / not done, from the report just written."""
    counts = {"done": 0, "error": 0, "not done": 0}
    try:
        with (Path(args.out) / REPORT_NAME).open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                counts[row["status"]] = counts.get(row["status"], 0) + 1
    except OSError:
        pass
    return counts
