"""Where the runtime's packages (torch, numpy, scipy, soundfile, safetensors) come from.

The runtime process is Blender's own Python (`sys.executable`) with a package folder on its
PYTHONPATH; Blender's process itself never imports torch. The folder is one of:

- bundled: a per-platform extension zip carries the wheels (manifest `wheels`); Blender installs
  them into its extensions' shared site-packages, `{EXTENSIONS}/.local/lib/pythonX.Y/site-packages`
  (the same on Blender 4.2 and 5.0). Nothing is downloaded.
- set up: 'Set up runtime' has pip install the pinned `model_runtime/requirements.txt` from the
  package index into `<folder>.partial`, checks that the packages import there, writes a ready
  marker and only then renames it to `<folder>`. A run that fails or is killed leaves at most a
  `.partial` folder, which never counts as set up.

Run as `python -m emote_blender.runtime_setup --folder F --log L` it is that set-up driver.
No bpy and no numpy here: the driver runs under any Python.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ == "emote_blender":  # the set-up driver's own process (start_setup's command)
    from model_runtime.errors import EmoteError  # top-level on purpose: driver process only
else:  # in Blender: one EmoteError with the one the UI catches
    from ..model_runtime.errors import EmoteError

RUNTIME_MODULES = ("torch", "numpy", "scipy", "soundfile", "safetensors")
READY_MARKER = "emote_runtime_ready.json"
SETUP_FOLDER_NAME = "runtime_packages"


def extension_root() -> Path:
    """The folder that holds `model_runtime/` and `emote_blender/` (the extension's folder)."""
    return Path(__file__).resolve().parent.parent


def requirements_file(root: Path | None = None) -> Path:
    return (root or extension_root()) / "model_runtime" / "requirements.txt"


def _pins(root: Path | None) -> list[tuple[str, bool]]:
    """(requirement, marked `# optional`) for each pin of requirements.txt, in file order."""
    out = []
    for ln in requirements_file(root).read_text("utf-8").splitlines():
        req, _, comment = ln.partition("#")
        if req.strip():
            out.append((req.strip(), comment.strip().lower().startswith("optional")))
    return out


def pinned_requirements(root: Path | None = None) -> list[str]:
    """The runtime's pinned pip requirements, e.g. ['torch==2.13.0', 'numpy==1.26.4', ...]."""
    return [req for req, _ in _pins(root)]


def optional_packages(root: Path | None = None) -> set[str]:
    """Names of the pinned packages marked `# optional` (matplotlib: the main job's plot); a
    set-up made without them, or with another version of them, still counts as ready."""
    return {_package(req) for req, optional in _pins(root) if optional}


def required_requirements(root: Path | None = None) -> list[str]:
    """The pins a runtime must hold: all but the optional ones. A set-up is ready when it has
    these; a bundled zip carries exactly these (scripts/build_extension.py)."""
    return [req for req, optional in _pins(root) if not optional]


def _package(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


# --- bundled wheels -------------------------------------------------------------------------

def wheel_site_packages(extensions_dir: str | Path) -> Path:
    """Where Blender installs extension wheels (addon_utils._initialize_extensions_site_packages)."""
    return (Path(extensions_dir) / ".local" / "lib" /
            f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages")


def bundled_torch_wheels(root: Path | None = None) -> list[Path]:
    return sorted(((root or extension_root()) / "wheels").glob("torch-*.whl"))


def has_bundled_runtime(extensions_dir: str | Path, root: Path | None = None) -> bool:
    """True when this extension shipped torch as a wheel and Blender has installed it."""
    return bool(bundled_torch_wheels(root)) and \
        (wheel_site_packages(extensions_dir) / "torch").is_dir()


# --- the set-up folder ----------------------------------------------------------------------

def setup_folder(user_dir: str | Path) -> Path:
    """Where 'Set up runtime' installs the packages (inside the extension's user folder)."""
    return Path(user_dir) / SETUP_FOLDER_NAME


def partial_folder(folder: Path) -> Path:
    return folder.with_name(folder.name + ".partial")


def log_path(folder: Path) -> Path:
    return folder.with_name("runtime_setup.log")


def lock_path(folder: Path) -> Path:
    return folder.with_name("runtime_setup.lock")


class SetupBusy(EmoteError):
    """Another process (another Blender) is setting up the same folder right now."""

    def __init__(self, message: str):
        super().__init__("setup_busy", message)


def lock_owner(folder: Path) -> int | None:
    """The process id of a live set-up driver holding the folder's lock, else None."""
    try:
        info = json.loads(lock_path(Path(folder)).read_text("utf-8"))
        pid, started = int(info["pid"]), float(info["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if os.name == "nt":  # no safe liveness probe without extra modules: trust it for 2 hours
        return pid if time.time() - started < 7200 else None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _take_lock(folder: Path) -> bool:
    path = lock_path(folder)
    if lock_owner(folder) is not None:
        return False
    path.unlink(missing_ok=True)  # stale: its driver is gone
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "started": time.time()}, fh)
    return True


def ready_info(folder: str | Path) -> dict | None:
    """The ready marker's content, or None when the folder is not a finished set-up."""
    try:
        info = json.loads((Path(folder) / READY_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def setup_state(folder: str | Path) -> str:
    """'ready', 'outdated' (made for other pins or another Python: Repair) or 'missing'."""
    info = ready_info(folder)
    if info is None:
        return "missing"
    pins = _pins(None)  # read once: the panel asks on every redraw
    optional = {_package(req) for req, opt in pins if opt}
    reqs = info.get("requirements")
    same = (isinstance(reqs, list)
            and [r for r in map(str, reqs) if _package(r) not in optional]
            == [req for req, opt in pins if not opt]
            and info.get("python") == list(sys.version_info[:2]))
    return "ready" if same else "outdated"


def remove_setup(folder: str | Path) -> None:
    """Delete the set-up packages (and any half-made attempt); the log stays for reading."""
    folder = Path(folder)
    if lock_owner(folder) is not None:
        raise SetupBusy("the runtime is being set up right now; remove it after that")
    for path in (folder, partial_folder(folder), folder.with_name(folder.name + ".old")):
        if path.exists():
            shutil.rmtree(path)


# --- which folders the runtime process gets -------------------------------------------------

_SITE_DIRS: dict[str, list[str]] = {}


def _key(python: str | Path) -> str:
    return os.path.normcase(os.path.abspath(str(python)))


def bind_site_dirs(python: str | Path, dirs: list[str | Path]) -> None:
    """Record the package folders `python` needs on its path to run the runtime."""
    _SITE_DIRS[_key(python)] = [str(d) for d in dirs]


def site_dirs_for(python: str | Path | None) -> list[str]:
    """The package folders bound to this interpreter (none for a user's own Python)."""
    return list(_SITE_DIRS.get(_key(python), [])) if python else []


# --- reading pip's log ----------------------------------------------------------------------

_NET = ("Failed to establish a new connection", "NewConnectionError", "Network is unreachable",
        "Temporary failure in name resolution", "Name or service not known",
        "Connection refused", "ConnectTimeoutError", "Read timed out", "getaddrinfo failed",
        "No route to host", "ProxyError", "SSLError")


def failure_reason(log: str) -> str:
    """One sentence saying why a set-up failed, read from its log (pip's words kept short)."""
    no_dist = re.search(r"No matching distribution found for ([^\s]+)", log)
    net = next((n for n in _NET if n in log), None)
    if no_dist:
        why = "no network?" if net else "no wheel for this platform and Python, or no network?"
        return f"no matching distribution for {no_dist.group(1)}: {why}"
    if net:
        return f"cannot reach the package index ({net}): no network?"
    if "No module named pip" in log:
        return ("Blender's Python has no pip; install pip for it, or set 'Runtime Python' to a "
                "Python that has torch")
    if "No space left on device" in log:
        return "the disk is full"
    if "Permission denied" in log:
        m = re.search(r"Permission denied: '([^']+)'", log)
        return "permission denied" + (f" writing {m.group(1)}" if m else "")
    m = re.search(r"IMPORT CHECK FAILED: (.+)", log)
    if m:
        return f"the installed packages do not import: {m.group(1).strip()}"
    m = re.findall(r"^ERROR: (.+)$", log, re.M)
    if m:
        return m[-1].strip()
    m = re.search(r"SETUP FAILED: (.+)", log)
    if m:
        return m.group(1).strip()
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "the set-up stopped without a message"


# --- the set-up driver (a separate process) -------------------------------------------------

_IMPORT_CHECK = (
    "import importlib, sys\n"
    "bad = []\n"
    "for m in sys.argv[1:]:\n"
    "    try:\n"
    "        importlib.import_module(m)\n"
    "    except Exception as exc:\n"
    "        bad.append('%s (%s: %s)' % (m, type(exc).__name__, exc))\n"
    "print('IMPORT CHECK FAILED: ' + '; '.join(bad) if bad else 'IMPORT CHECK OK', flush=True)\n"
    "sys.exit(1 if bad else 0)\n")


def _clean_env(extra_path: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PYTHONNOUSERSITE"] = "1"  # the user's ~/.local packages must not satisfy or shadow
    env["PYTHONUNBUFFERED"] = "1"
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return env


def install_command(python: str, target: Path, requirements: list[str]) -> list[str]:
    """pip from the configured package index (PyPI by default, no extra index), wheels only."""
    return [python, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:",
            "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
            *requirements]


def _say(line: str) -> None:
    print(line, flush=True)


def run_setup(folder: Path, python: str) -> int:
    """Build the packages into `<folder>.partial`, check, mark ready, rename. Returns 0 or 1."""
    folder = Path(folder)
    tmp = partial_folder(folder)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    reqs = pinned_requirements()
    steps = [
        ("checking pip", [python, "-m", "pip", "--version"], None),
        ("downloading and installing PyTorch and the rest (about 1 GB)",
         install_command(python, tmp, reqs), None),
        ("checking that the packages import", [python, "-c", _IMPORT_CHECK, *RUNTIME_MODULES],
         str(tmp)),
    ]
    for words, cmd, path in steps:
        _say("STEP: " + words)
        shown = cmd if "-c" not in cmd else cmd[:2] + ["<import check>"] + cmd[3:]
        _say("$ " + " ".join(shown))
        rc = subprocess.call(cmd, env=_clean_env(path), stdin=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
        if rc:
            _say(f"SETUP FAILED: step exited with code {rc}")
            shutil.rmtree(tmp, ignore_errors=True)
            return 1
    marker = {"requirements": reqs, "python": list(sys.version_info[:2]),
              "interpreter": python, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    (tmp / READY_MARKER).write_text(json.dumps(marker, indent=1), "utf-8")
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    _say(f"DONE: the runtime packages are ready in {folder}")
    return 0


class SetupRun:
    """One 'Set up runtime' in flight (a driver process); `poll()` says when it has ended."""

    def __init__(self, folder: Path, python: str, proc: subprocess.Popen):
        self.folder, self.python, self.proc = Path(folder), python, proc
        self.log = log_path(self.folder)
        self.rc: int | None = None

    @property
    def running(self) -> bool:
        return self.poll() is None

    def poll(self) -> int | None:
        if self.rc is None:
            self.rc = self.proc.poll()
        return self.rc

    def wait(self, timeout_s: float | None = None) -> int:
        self.rc = self.proc.wait(timeout=timeout_s)
        return self.rc

    def progress_text(self) -> str:
        """The current step in words, with pip's latest line (e.g. 'Downloading torch...')."""
        try:
            lines = [ln.strip() for ln in self.log.read_text("utf-8", "replace").splitlines()
                     if ln.strip()]
        except OSError:
            lines = []
        steps = [ln[len("STEP: "):] for ln in lines if ln.startswith("STEP: ")]
        if not steps:
            return "starting"
        last = lines[-1]
        if last.startswith(("STEP: ", "$ ")):
            return steps[-1]
        return f"{steps[-1]}: {last[:80]}"

    @property
    def ok(self) -> bool:
        return self.poll() == 0 and setup_state(self.folder) == "ready"

    def reason(self) -> str:
        """Why it failed, in one sentence from the log ('' while running or when it worked)."""
        if self.poll() is None or self.ok:
            return ""
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            text = ""
        return failure_reason(text)


_CURRENT: SetupRun | None = None


def current() -> SetupRun | None:
    """The last set-up started in this process (running or ended), if any."""
    return _CURRENT


def start_setup(folder: str | Path, python: str | Path | None = None) -> SetupRun:
    """Start the set-up driver in the background; while one runs, return that one instead."""
    global _CURRENT
    if _CURRENT is not None and _CURRENT.running:
        return _CURRENT
    folder, python = Path(folder), str(python or sys.executable)
    owner = lock_owner(folder)
    if owner is not None:
        raise SetupBusy(f"another Blender (set-up process {owner}) is already setting up the "
                        "runtime; wait for it to finish")
    log = log_path(folder)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = _clean_env(str(extension_root()))
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            # emote_blender and model_runtime are top-level in that process (see the imports)
            [python, "-m", "emote_blender.runtime_setup", "--folder", str(folder),
             "--python", python], stdin=subprocess.DEVNULL, stdout=fh,
            stderr=subprocess.STDOUT, env=env, cwd=str(log.parent))
    _CURRENT = SetupRun(folder, python, proc)
    return _CURRENT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Install the EMOTE runtime's pinned packages.")
    ap.add_argument("--folder", required=True, type=Path)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    args.folder.parent.mkdir(parents=True, exist_ok=True)
    if not _take_lock(args.folder):
        _say("SETUP FAILED: another set-up of this runtime is running")
        return 1
    try:
        return run_setup(args.folder, args.python)
    except OSError as exc:
        _say(f"SETUP FAILED: {exc}")
        shutil.rmtree(partial_folder(args.folder), ignore_errors=True)
        return 1
    finally:
        lock_path(args.folder).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
