"""The warm runtime: one `python -m model_runtime serve` process kept between Generates.

Requests go in on its stdin, one JSON line each; its events come back in a file that `pump()`
routes to the jobs by id. No bpy here.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path

from .runtime_env import check_interpreter, runtime_env
from .runtime_events import LineTail, parse_event, tail_text
from .runtime_job import Job, new_job_folder

READY_TIMEOUT_S = 180.0  # a server that has not said "ready" by then is hung


class ServeProcess:
    """A warm `python -m model_runtime serve` process: requests in on stdin, events in a file."""

    _ids = itertools.count(1)

    def __init__(self, python: str | Path, work_dir: str | Path | None = None):
        self.python = str(check_interpreter(python))
        self.folder = new_job_folder(work_dir)
        self.ready = False
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []
        self.started = time.monotonic()
        self._tail = LineTail(self.folder / "stdout.jsonl")
        with open(self.folder / "stdout.jsonl", "wb") as out, \
                open(self.folder / "stderr.txt", "wb") as err:
            self.proc = subprocess.Popen(
                [self.python, "-m", "model_runtime", "serve"], stdin=subprocess.PIPE,
                stdout=out, stderr=err, env=runtime_env(self.python),
                cwd=str(self.folder))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, request: dict, work_dir: str | Path | None = None) -> Job:
        folder = new_job_folder(work_dir)
        job = Job(request, folder, folder / "result.npz")
        job._server, job._id = self, f"r{next(self._ids)}"
        (folder / "request.json").write_text(json.dumps(request), "utf-8")
        self.jobs[job._id] = job
        if self.ready:
            self._send(job)
        else:
            self.pending.append(job)
        return job

    def _send(self, job: Job) -> None:
        line = json.dumps({"id": job._id, "request": job.request, "out": str(job.out_path)})
        try:
            self.proc.stdin.write((line + "\n").encode("utf-8"))
            self.proc.stdin.flush()
            job.state, job.stage, job.last_output = "running", "queued", time.monotonic()
        except OSError:
            pass  # the exit is noticed by pump()

    def pump(self) -> None:
        """Route new event lines to their jobs; fail the jobs if the process died or hung."""
        for line in self._tail.read():
            ev = parse_event(line)
            if ev is None:
                continue
            if ev.get("event") == "ready" and not self.ready:
                self.ready = True
                for job in self.pending:
                    self._send(job)
                self.pending.clear()
            elif ev.get("id") in self.jobs:
                self.jobs[ev["id"]].handle(ev)
        now = time.monotonic()
        if not self.alive:
            why = (f"The runtime stopped (exit code {self.proc.returncode}). Last output: "
                   f"{tail_text(self.folder / 'stderr.txt') or 'none'}.")
            for job in self.jobs.values():
                if not job.finished:
                    job.fail("runtime_crashed", why)
        else:
            for job in self.jobs.values():
                limit = READY_TIMEOUT_S if job.state == "starting" else job.stall_timeout_s
                if not job.finished and now - job.last_output > limit:
                    self.kill()
                    job.fail("runtime_hung", f"The runtime gave no sign of progress for "
                             f"{limit:.0f} s and was stopped. Try again.")
        self.jobs = {k: j for k, j in self.jobs.items() if not j.finished}

    def cancel(self, job: Job) -> None:
        """Drop a job: not sent yet, it is forgotten; in flight, the server stops it at its next
        progress step (its reply is ignored) and stays warm."""
        self.jobs.pop(job._id, None)
        if job in self.pending:
            self.pending.remove(job)
            return
        try:
            self.proc.stdin.write((json.dumps({"cmd": "cancel", "id": job._id}) + "\n")
                                  .encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:
            pass  # the process is gone; the next start() replaces it

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def shutdown(self) -> None:
        """Ask the process to exit (close stdin); kill it if it does not."""
        if self.alive:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
