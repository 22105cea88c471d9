"""Reading the runtime's progress: JSON event lines appended to a file, and its stderr's tail.

The runtime's stdout goes to a file in the job folder that is read from where the last read
stopped, so the same code polls from a Blender timer, a modal operator or a plain loop, on any
OS, without threads. No bpy here.
"""

from __future__ import annotations

import json
from pathlib import Path


class LineTail:
    """Reads whole new lines appended to a file since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.buffer = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [ln.decode("utf-8", "replace").strip() for ln in lines if ln.strip()]


def parse_event(line: str) -> dict | None:
    """The event a line holds (`{"event": ...}`), or None for anything else."""
    try:
        ev = json.loads(line)
    except ValueError:
        return None  # stray print from a library: not an event
    return ev if isinstance(ev, dict) and "event" in ev else None


def tail_text(path: Path, lines: int = 6) -> str:
    """The last few lines of a log file joined into one, '' when it cannot be read."""
    try:
        text = path.read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
