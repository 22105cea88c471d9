"""Run the EMOTE runtime in its own interpreter and follow its progress without threads.

The runtime's stdout goes to a file in the job folder that we read from where we stopped, so the
same code polls from a Blender timer, a modal operator or a plain loop, on any OS. A warm `serve`
process is kept between Generates; a one-shot `generate` process is the fallback. No bpy here.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STALL_TIMEOUT_S = 180.0  # no output for this long while working: the runtime is hung
READY_TIMEOUT_S = 180.0


class RuntimeFailure(Exception):
    """The runtime reported an error, crashed, hung or was cancelled; `kind` says which."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def extension_root() -> Path:
    """The folder that holds `model_runtime/` (the extension's own folder)."""
    return Path(__file__).resolve().parent.parent


def runtime_env(python: str | Path | None = None) -> dict:
    """Environment for the runtime process: the extension folder first on its import path, then
    the package folders bound to `python` (bundled wheels or 'Set up runtime', runtime_setup)."""
    from emote_blender.runtime_setup import site_dirs_for

    env = dict(os.environ)
    first = [str(extension_root())] + site_dirs_for(python)
    env["PYTHONPATH"] = os.pathsep.join(first + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and p not in first])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)  # Blender sets it for its own Python; the runtime has its own
    if len(first) > 1:
        env["PYTHONNOUSERSITE"] = "1"  # our packages, not whatever is in the user's ~/.local
    return env


def check_interpreter(python: str | Path | None) -> Path:
    """The runtime interpreter, or RuntimeFailure(missing_runtime) saying how to get one."""
    if not python or not Path(python).is_file():
        what = f" ({python} does not exist)" if python else ""
        raise RuntimeFailure("missing_runtime", f"The EMOTE runtime is not set up{what}. Press "
                             "'Set up runtime' in the EMOTE panel or the add-on preferences, "
                             "or point the preferences at a Python that has torch.")
    return Path(python)


def build_request(audio: str | Path, audio_start_s: float, audio_end_s: float | None, fps: float,
                  frame_count: int, model: str, identity: str, emotion_weights: np.ndarray,
                  intensity: np.ndarray, emotion_names: list[str] | tuple[str, ...]) -> dict:
    """The request JSON of DESIGN.md, checked for shape so the runtime never sees nonsense."""
    w = np.asarray(emotion_weights, dtype=np.float64)
    i = np.asarray(intensity, dtype=np.float64).reshape(-1)
    if w.shape != (frame_count, len(emotion_names)) or i.shape != (frame_count,):
        raise ValueError(f"emotion track {w.shape} / intensity {i.shape} do not match "
                         f"{frame_count} frames x {len(emotion_names)} emotions")
    return {
        "audio": str(Path(audio).resolve()),
        "audio_start_s": float(audio_start_s),
        "audio_end_s": None if audio_end_s is None else float(audio_end_s),
        "fps": float(fps),
        "frame_count": int(frame_count),
        "model": str(model),
        "identity": str(identity) if identity else None,
        "emotion": {"names": list(emotion_names), "weights": np.round(w, 6).tolist()},
        "intensity": np.round(i, 6).tolist(),
    }


class _LineTail:
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


def _parse(line: str) -> dict | None:
    try:
        ev = json.loads(line)
    except ValueError:
        return None  # stray print from a library: not an event
    return ev if isinstance(ev, dict) and "event" in ev else None


def _tail_text(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


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
    _server: "ServeProcess | None" = None
    _tail: _LineTail | None = None
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
            self.handle(_parse(line))
        if self.finished:
            return
        if self._proc.poll() is not None:
            for line in self._tail.read():
                self.handle(_parse(line))
            if not self.finished:
                self.fail("runtime_crashed", "The runtime stopped without a result (exit code "
                          f"{self._proc.returncode}). Last output: "
                          f"{_tail_text(self.folder / 'stderr.txt') or 'none'}.")
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


def _new_folder(work_dir: str | Path | None) -> Path:
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
    """Remove every job folder this process made (Blender exit, add-on unregister)."""
    shutdown_server()  # its log files live in one of them
    for folder in list(_JOB_FOLDERS):
        shutil.rmtree(folder, ignore_errors=True)
        _JOB_FOLDERS.discard(folder)


atexit.register(remove_job_folders)


def start_generate(request: dict, python: str | Path, work_dir: str | Path | None = None) -> Job:
    """Start a one-shot `python -m model_runtime generate` process for the request."""
    python = check_interpreter(python)
    folder = _new_folder(work_dir)
    req_path, out_path = folder / "request.json", folder / "result.npz"
    req_path.write_text(json.dumps(request), "utf-8")
    job = Job(request, folder, out_path)
    job._tail = _LineTail(folder / "stdout.jsonl")
    with open(folder / "stdout.jsonl", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        job._proc = subprocess.Popen(
            [str(python), "-m", "model_runtime", "generate", "--request", str(req_path),
             "--out", str(out_path), "--progress", "jsonl"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=runtime_env(python),
            cwd=str(folder))
    return job


class ServeProcess:
    """A warm `python -m model_runtime serve` process: requests in on stdin, events in a file."""

    _ids = itertools.count(1)

    def __init__(self, python: str | Path, work_dir: str | Path | None = None):
        self.python = str(check_interpreter(python))
        self.folder = _new_folder(work_dir)
        self.ready = False
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []
        self.started = time.monotonic()
        self._tail = _LineTail(self.folder / "stdout.jsonl")
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
        folder = _new_folder(work_dir)
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
            ev = _parse(line)
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
                   f"{_tail_text(self.folder / 'stderr.txt') or 'none'}.")
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


_SERVER: ServeProcess | None = None


def start(request: dict, python: str | Path, work_dir: str | Path | None = None,
          use_server: bool = True) -> Job:
    """Start a Generate: on the warm server (started or restarted as needed) or one-shot."""
    global _SERVER
    if not use_server:
        return start_generate(request, python, work_dir)
    if _SERVER is None or not _SERVER.alive or _SERVER.python != str(check_interpreter(python)):
        shutdown_server()
        _SERVER = ServeProcess(python, work_dir)
        atexit.register(shutdown_server)  # Blender quitting must not leave it running
    return _SERVER.submit(request, work_dir)


def shutdown_server() -> None:
    """Stop the warm runtime (add-on unregister, Blender exit)."""
    global _SERVER
    if _SERVER is not None:
        _SERVER.shutdown()
        _SERVER = None


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


def read_result(path: str | Path, frame_count: int) -> dict:
    """Load and check RESULT.npz (DESIGN.md); RuntimeFailure(bad_result) when it is not usable."""
    path = Path(path)

    def bad(msg: str) -> RuntimeFailure:
        return RuntimeFailure("bad_result", f"The runtime's result {path.name} is unusable: {msg}. "
                              "Try Generate again; report it if it repeats.")

    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # missing file, bad zip, pickled arrays
        raise bad(str(exc)) from None
    for key in ("fps", "exp", "jaw", "exp_names"):
        if key not in d:
            raise bad(f"it lacks '{key}'")
    exp, jaw = d["exp"].astype(np.float32), d["jaw"].astype(np.float32)
    names = [str(s) for s in d["exp_names"]]
    if exp.ndim != 2 or exp.shape[1] != len(names) or jaw.shape != (exp.shape[0], 3):
        raise bad(f"exp {exp.shape}, jaw {jaw.shape} and {len(names)} names do not fit")
    if exp.shape[0] != frame_count:
        raise bad(f"it has {exp.shape[0]} frames, the strip needs {frame_count}")
    if not (np.all(np.isfinite(exp)) and np.all(np.isfinite(jaw))):
        raise bad("it contains NaN or Inf")
    life = {}  # head (T, 3) and gaze (T, 2): optional, all zero in results made without them
    for key, width in (("head", 3), ("gaze", 2)):
        arr = d[key].astype(np.float32) if key in d else np.zeros((exp.shape[0], width),
                                                                     np.float32)
        if arr.shape != (exp.shape[0], width) or not np.all(np.isfinite(arr)):
            raise bad(f"{key} {arr.shape} is not {exp.shape[0]} finite rows of {width}")
        life[key] = arr
    return {"fps": float(d["fps"]), "exp": exp, "jaw": jaw, "exp_names": names, **life,
            "model_id": str(d.get("model_id", "")), "head_id": str(d.get("head_id", ""))}


def run_sync(request: dict, python: str | Path, work_dir: str | Path | None = None,
             use_server: bool = False, timeout_s: float = 600.0) -> tuple[dict, Job]:
    """Start, wait and read the result in one call; raise RuntimeFailure on any failure."""
    job = wait(start(request, python, work_dir, use_server), timeout_s)
    if job.state != "done":
        raise job.error or RuntimeFailure("runtime_error", "The runtime failed.")
    return read_result(job.out_path, request["frame_count"]), job
