"""One Generate as the Blender side follows it: the job state machine, its folder, and the
one-shot `python -m model_runtime generate` process. No bpy here.

A job moves starting -> running -> done, error or cancelled; `poll()` advances it from the
runtime's event lines (runtime_events) and notices a crash or a hang. The warm `serve` process
that can run it instead lives in runtime_server.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .runtime_env import check_interpreter, runtime_env
from .runtime_events import LineTail, parse_event, tail_text
from ..model_runtime.errors import RuntimeFailure

if TYPE_CHECKING:
    from .runtime_server import ServeProcess

STALL_TIMEOUT_S = 180.0  # no output for this long while working: the runtime is hung


@dataclass
class Job:
    """One Generate in flight. `poll()` advances it; `state` ends as done, error or cancelled."""

    request: dict
    folder: Path
    out_path: Path
    state: str = "starting"  # starting, running, done, error, cancelled
    stage: str = "starting runtime"
    done: int = 0
    total: int = 0
    error: RuntimeFailure | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. "the WAV file ... is cut short"
    last_output: float = field(default_factory=time.monotonic)
    stall_timeout_s: float = STALL_TIMEOUT_S
    _proc: subprocess.Popen | None = None
    _server: ServeProcess | None = None
    _tail: LineTail | None = None
    _id: str = ""
    started: float = field(default_factory=time.monotonic)
    runtime_s: float = 0.0  # from start to the runtime's "done" line, as this client saw it
    inference_s: float = 0.0  # the runtime's own time for the request (warm server only)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled")

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def poll(self) -> None:
        """Read new progress lines; notice a crash or a hang."""
        if self.finished:
            return
        if self._server is not None:
            self._server.pump()
            return
        for line in self._tail.read():
            self.handle(parse_event(line))
        if self.finished:
            return
        if self._proc.poll() is not None:
            for line in self._tail.read():
                self.handle(parse_event(line))
            if not self.finished:
                self.fail("runtime_crashed", "The runtime stopped without a result (exit code "
                          f"{self._proc.returncode}). Last output: "
                          f"{tail_text(self.folder / 'stderr.txt') or 'none'}.")
        elif time.monotonic() - self.last_output > self.stall_timeout_s:
            self.kill()
            self.fail("runtime_hung", f"The runtime gave no sign of progress for "
                      f"{self.stall_timeout_s:.0f} s and was stopped. Try again; if it keeps "
                      "happening, check the runtime in the add-on preferences.")

    def handle(self, ev: dict | None) -> None:
        """Apply one progress event (ignores non-events)."""
        if ev is None:
            return
        self.last_output = time.monotonic()
        kind = ev.get("event")
        if kind == "progress":
            self.state = "running"
            self.stage = str(ev.get("stage", ""))
            self.done, self.total = int(ev.get("done", 0)), int(ev.get("total", 0))
        elif kind == "done":
            self.runtime_s = time.monotonic() - self.started
            self.inference_s = float(ev.get("seconds", 0.0))
            self.state = "done"
            self.stage, self.done = "done", self.total
        elif kind == "error":
            self.fail(str(ev.get("kind", "runtime_error")), str(ev.get("message", "unknown")))
        elif kind == "warning":
            self.warnings.append(str(ev.get("message", "")))

    def fail(self, kind: str, message: str) -> None:
        self.state = "error"
        self.error = RuntimeFailure(kind, message)

    def kill(self) -> None:
        if self._server is not None:
            self._server.kill()
        elif self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def cancel(self) -> None:
        """Stop this Generate; the caller leaves the scene untouched. A warm server is asked to
        drop the request and stays warm; a one-shot process is killed."""
        if self.finished:
            return
        if self._server is not None and self._server.alive:
            self._server.cancel(self)
        else:
            self.kill()
        self.state = "cancelled"
        self.error = RuntimeFailure("cancelled", "Generate was cancelled; the scene is unchanged.")


_JOB_FOLDERS: set[Path] = set()  # created by this process; removed by discard() or at exit


def new_job_folder(work_dir: str | Path | None) -> Path:
    """A new, empty job folder under `work_dir` (default: the temp folder's emote_jobs)."""
    base = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "emote_jobs"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="job_", dir=base))
    _JOB_FOLDERS.add(folder)
    return folder


def discard(job: Job) -> None:
    """Remove a finished job's folder (request, result, logs) once its result is baked or the
    job failed; a job still running is cancelled first."""
    if not job.finished:
        job.cancel()
    shutil.rmtree(job.folder, ignore_errors=True)
    _JOB_FOLDERS.discard(job.folder)


def remove_job_folders() -> None:
    """Remove every job folder this process made (Blender exit). The warm server, whose log files
    live in one of them, is stopped first: runtime_client registers its shutdown later, so it
    runs earlier at exit."""
    for folder in list(_JOB_FOLDERS):
        shutil.rmtree(folder, ignore_errors=True)
        _JOB_FOLDERS.discard(folder)


atexit.register(remove_job_folders)


def start_one_shot(request: dict, python: str | Path, work_dir: str | Path | None = None) -> Job:
    """Start a one-shot `python -m model_runtime generate` process for the request."""
    python = check_interpreter(python)
    folder = new_job_folder(work_dir)
    req_path, out_path = folder / "request.json", folder / "result.npz"
    req_path.write_text(json.dumps(request), "utf-8")
    job = Job(request, folder, out_path)
    job._tail = LineTail(folder / "stdout.jsonl")
    with open(folder / "stdout.jsonl", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        job._proc = subprocess.Popen(
            [str(python), "-m", "model_runtime", "generate", "--request", str(req_path),
             "--out", str(out_path), "--progress", "jsonl"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=runtime_env(python),
            cwd=str(folder))
    return job


def wait(job: Job, timeout_s: float = 600.0, interval_s: float = 0.05) -> Job:
    """Poll a job until it finishes (background mode and tests); cancel it on timeout."""
    end = time.monotonic() + timeout_s
    while not job.finished:
        job.poll()
        if job.finished:
            break
        if time.monotonic() > end:
            job.cancel()
            job.fail("runtime_hung", f"The runtime did not finish within {timeout_s:.0f} s.")
            break
        time.sleep(interval_s)
    return job
