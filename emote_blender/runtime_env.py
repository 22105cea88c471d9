"""The runtime process's interpreter and environment: which Python, and what it can import.

No bpy here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..model_runtime.errors import RuntimeFailure


def extension_root() -> Path:
    """The folder that holds `model_runtime/` (the extension's own folder)."""
    return Path(__file__).resolve().parent.parent


def runtime_env(python: str | Path | None = None) -> dict:
    """Environment for the runtime process: the extension folder first on its import path, then
    the package folders bound to `python` (bundled wheels or 'Set up runtime', runtime_setup)."""
    from .runtime_setup import site_dirs_for

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
