"""Progress reporting for the command line: JSON lines for programs, a bar for people.

A progress reporter is any callable `(stage, done, total)`; these build the two the CLI uses.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Callable

Progress = Callable[[str, int, int], None]


def emit(stream: IO[str], event: dict) -> None:
    """Write one JSON object as one line and flush, so a reading process sees it at once."""
    stream.write(json.dumps(event) + "\n")
    stream.flush()


def jsonl_progress(stream: IO[str], extra: dict | None = None) -> Progress:
    """A reporter printing `{"event": "progress", "stage", "done", "total"}` lines (+ `extra`)."""
    extra = dict(extra or {})

    def report(stage: str, done: int, total: int) -> None:
        emit(stream, {"event": "progress", "stage": stage, "done": int(done), "total": int(total),
                      **extra})

    return report


def bar_progress(stream: IO[str] | None = None, width: int = 30) -> Progress:
    """A reporter drawing one self-overwriting text bar per stage on a terminal."""
    stream = stream or sys.stderr
    labels = {"load_model": "loading model", "load_audio": "reading audio",
              "inference": "animating", "write": "writing"}

    def report(stage: str, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        filled = int(round(width * frac))
        label = labels.get(stage, stage)
        stream.write(f"\r{label:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return report


def no_progress(stage: str, done: int, total: int) -> None:
    """A reporter that says nothing."""
