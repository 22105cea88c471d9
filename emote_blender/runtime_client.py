"""The Blender side's door to the runtime: start a Generate on the warm server or one-shot.

A warm `serve` process (runtime_server) is kept between Generates and replaced when it died or
the interpreter changed; a one-shot `generate` process (runtime_job) is the fallback. Follow the
returned job with `runtime_job.wait` or its `poll()`, check its result with runtime_result.
No bpy here.
"""

from __future__ import annotations

import atexit
from pathlib import Path

from .runtime_env import check_interpreter
from .runtime_job import Job, start_one_shot
from .runtime_server import ServeProcess

_SERVER: ServeProcess | None = None


def start(request: dict, python: str | Path, work_dir: str | Path | None = None,
          use_server: bool = True) -> Job:
    """Start a Generate: on the warm server (started or restarted as needed) or one-shot."""
    global _SERVER
    if not use_server:
        return start_one_shot(request, python, work_dir)
    if _SERVER is None or not _SERVER.alive or _SERVER.python != str(check_interpreter(python)):
        shutdown_server()
        _SERVER = ServeProcess(python, work_dir)
        # Blender quitting must not leave it running. Registered after runtime_job's folder
        # clean-up, so it runs before it (atexit is last in, first out) and frees its log files.
        atexit.register(shutdown_server)
    return _SERVER.submit(request, work_dir)


def shutdown_server() -> None:
    """Stop the warm runtime (add-on unregister, Blender exit)."""
    global _SERVER
    if _SERVER is not None:
        _SERVER.shutdown()
        _SERVER = None
