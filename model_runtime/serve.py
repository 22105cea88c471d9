"""The warm runtime: `python -m model_runtime serve`, requests in on stdin, JSON events out.

Blender keeps one such process between Generates so torch and the model stay loaded. A reader
thread takes lines off stdin while a request runs, so `{"cmd": "cancel", "id": ID}` stops that
request at its next progress step and the process stays warm for the next one.

Protocol, one JSON object per line. In: `{"id": ID, "request": {...}, "out": PATH}`,
`{"cmd": "cancel", "id": ID}` or `{"cmd": "shutdown"}`. Out: `{"event": "ready"}` once, then per
request progress lines and exactly one `done` or `error` line, each carrying the id (a cancelled
request ends with an error of kind `cancelled`). Exits on shutdown or end of input.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
import time
import traceback
from typing import IO

from .errors import EmoteInputError, warnings_to
from .progress import emit, jsonl_progress

EPILOG = ("Protocol: one JSON object per line on stdin: {\"id\": ID, \"request\": {...}, \"out\": "
          "PATH}, {\"cmd\": \"cancel\", \"id\": ID} or {\"cmd\": \"shutdown\"}. Replies on "
          "stdout: {\"event\": \"ready\"} once, then per request progress lines and one done or "
          "error line, each carrying the id. Exits on shutdown or end of input.")
_END = object()


class Cancelled(Exception):
    """The client asked to stop the request in flight."""


def _read_lines(stream: IO[str], inbox: queue.Queue, cancelled: set) -> None:
    """Reader thread: parse stdin lines; cancels take effect at once, the rest is queued."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            message = {"_bad": f"Could not parse the line as JSON ({exc})."}
        if not isinstance(message, dict):
            message = {"_bad": "Each line must be a JSON object."}
        if message.get("cmd") == "cancel":
            cancelled.add(message.get("id"))
            continue
        inbox.put(message)
        if message.get("cmd") == "shutdown":
            return
    inbox.put(_END)


def serve(stdin: IO[str], out: IO[str], internal_message: str) -> None:
    """Answer requests until shutdown or end of input (the caller has redirected stray prints)."""
    from . import inference  # imports torch: "ready" means warm

    inbox: queue.Queue = queue.Queue()
    cancelled: set = set()
    threading.Thread(target=_read_lines, args=(stdin, inbox, cancelled), daemon=True).start()
    emit(out, {"event": "ready"})
    while True:
        message = inbox.get()
        if message is _END or message.get("cmd") == "shutdown":
            return
        if "_bad" in message:
            emit(out, {"event": "error", "id": None, "kind": "bad_request",
                       "message": message["_bad"]})
            continue
        _serve_one(out, message, inference, cancelled, internal_message)


def _serve_one(out, message: dict, inference, cancelled: set, internal_message: str) -> None:
    rid = message.get("id")
    report = jsonl_progress(out, {"id": rid})

    def progress(stage: str, done: int, total: int) -> None:
        if rid in cancelled:
            raise Cancelled
        report(stage, done, total)

    try:
        if "cmd" in message:
            raise EmoteInputError("bad_request", f"Unknown command {message['cmd']!r}; the "
                                  "commands are \"cancel\" and \"shutdown\".")
        if not isinstance(message.get("out"), str) or not message["out"]:
            raise EmoteInputError("bad_request", "Give \"out\", the path of the result file.")
        progress("queued", 0, 1)
        started = time.perf_counter()
        with warnings_to(lambda text: emit(out, {"event": "warning", "id": rid,
                                                  "message": text})):
            inference.run_request(message.get("request"), message["out"], progress)
        emit(out, {"event": "done", "id": rid, "out": message["out"],
                   "seconds": round(time.perf_counter() - started, 4)})
    except Cancelled:
        emit(out, {"event": "error", "id": rid, "kind": "cancelled",
                   "message": "Cancelled; the runtime stays warm."})
    except EmoteInputError as exc:
        emit(out, {"event": "error", "id": rid, "kind": exc.kind, "message": exc.message})
    except Exception as exc:  # one broken request must not take the warm runtime down
        traceback.print_exc(file=sys.stderr)
        emit(out, {"event": "error", "id": rid, "kind": "internal",
                   "message": internal_message.format(error=f"{type(exc).__name__}: {exc}")})
    finally:
        cancelled.discard(rid)


def run(stdin: IO[str] | None = None, out: IO[str] | None = None,
        internal_message: str = "{error}") -> int:
    """The `serve` command: stdout carries only protocol lines, stray prints go to stderr."""
    stdin, out = stdin or sys.stdin, out or sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        serve(stdin, out, internal_message)
    return 0
