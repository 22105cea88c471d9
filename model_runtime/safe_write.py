"""Writing the user's files safely: a temporary file beside the target, renamed over it on success.

Every file the product writes (results, checkpoints, batch reports, exports) goes through here, so
a failed, cancelled or killed run leaves the old file byte for byte. A temporary file is named
`.NAME.PID-RANDOM.part` next to its target; one whose process is gone is stale and is removed by
the next write of the same target. Finished files get the usual permissions (0666 less the
umask), not the 0600 of a private temporary file. Standard library only (Blender imports it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Iterator

from .errors import EmoteInputError

TEMP_SUFFIX = ".part"
HOLD_ENV = "EMOTE_TEST_HOLD_AT"  # tests only: "POINT" or "POINT:DETAIL" makes the run wait there


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside `target`, carrying this process's id."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _owner_pid(temp: Path, target_name: str) -> int | None:
    middle = temp.name[len(target_name) + 2:-len(TEMP_SUFFIX)]
    pid = middle.partition("-")[0]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process there
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _alive_windows(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def clean_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove temporaries of `target` left by processes that no longer run; returns them."""
    target = Path(target)
    removed = []
    try:
        candidates = list(target.parent.glob(f".{_glob_escape(target.name)}.*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    for temp in candidates:
        pid = _owner_pid(temp, target.name)
        if pid is None or _alive(pid):
            continue
        try:
            if temp.is_dir():
                import shutil

                shutil.rmtree(temp)
            else:
                temp.unlink()
            removed.append(temp)
        except OSError:
            pass
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def file_mode() -> int:
    """0666 less the process umask: the permissions a plain new file would get."""
    try:  # Linux: read it without changing it (other threads may be creating files)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def cannot_write(path: str | os.PathLike, exc: OSError) -> EmoteInputError:
    """An unwritable destination, said in words (folder missing, permission, disk full...)."""
    import errno

    path = Path(path)
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return EmoteInputError("unwritable_output", f"Cannot write {path}: the disk is full "
                               f"({reason}). Free some space or choose another folder; nothing "
                               "was changed.")
    return EmoteInputError("unwritable_output", f"Cannot write {path}: the folder {path.parent} "
                           f"is not writable ({reason}). Choose a folder you can write to; "
                           "nothing was changed.")


@contextlib.contextmanager
def replacing(target: str | os.PathLike, mode: str = "wb",
              encoding: str | None = None) -> Iterator[IO]:
    """Yield a file open on a temporary beside `target`; on success it replaces `target`.

    If the body raises (or the process dies), `target` is untouched and no temporary stays behind
    (a killed process's temporary is removed by the next write of the same target).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(target, exc) from exc
    clean_stale_temps(target)
    temp = temp_path(target)
    try:
        fh = open(temp, "x" + mode.replace("w", ""), encoding=encoding,
                  newline="" if "b" not in mode else None)
    except OSError as exc:
        raise cannot_write(target, exc) from exc
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temp, file_mode())
        hold_point("replace", target.name)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, EmoteInputError):
            raise cannot_write(target, exc) from exc
        raise
    _sync_folder(target.parent)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Replace `target` with `data` atomically."""
    with replacing(target, "wb") as fh:
        fh.write(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Replace `target` with UTF-8 `text` atomically."""
    with replacing(target, "w", encoding="utf-8") as fh:
        fh.write(text)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable where the OS allows it (not on Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (following links); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def refuse_overwriting_input(out: str | os.PathLike, inputs: dict[str, str | os.PathLike]) -> None:
    """bad_request before anything is touched when the output path is one of the inputs."""
    for what, path in inputs.items():
        if path and same_file(out, path):
            raise EmoteInputError("bad_request", f"The output path {out} is the {what} itself; "
                                  "writing there would destroy it. Give another output file "
                                  "name, such as RESULT.npz.")


def hold_point(point: str, detail: str = "") -> None:
    """Test hook: when $EMOTE_TEST_HOLD_AT names this point, say so on stderr and wait forever
    (a test then kills the process at a known stage). Does nothing otherwise."""
    want = os.environ.get(HOLD_ENV)
    if not want or want not in (point, f"{point}:{detail}"):
        return
    sys.stderr.write(f"EMOTE_TEST_HOLD {point}:{detail} pid={os.getpid()}\n")
    sys.stderr.flush()
    while True:
        time.sleep(60)
