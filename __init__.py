# SPDX-License-Identifier: GPL-3.0-or-later
"""EMOTE for Blender: dialogue audio to expressive facial animation (extension entry point).

Blender imports this folder as the package `bl_ext.<repo>.emote`; its parts (addon_ui,
emote_blender, model_runtime) import each other relatively, so nothing of the extension is
loaded under a generic top-level name and sys.path is left alone. The runtime process is told
its path explicitly: it runs `python -m model_runtime` with this folder on its PYTHONPATH
(emote_blender/runtime_client.py runtime_env). A checkout imports it as `emote`
(scripts/devpath).
"""

import sys

NUMPY_MISSING = (
    "EMOTE needs numpy in Blender's own Python, and this Blender has none (Debian's and some "
    "other distributions' blender packages use the system Python without it). Install it for "
    "that Python (Debian/Ubuntu: sudo apt install python3-numpy) and enable EMOTE again, or use "
    "a Blender from blender.org, which ships numpy.")


def register() -> None:
    try:
        import numpy  # noqa: F401  (the add-on's own code needs it in Blender's process)
    except ImportError:
        print("EMOTE: " + NUMPY_MISSING, file=sys.stderr)
        raise ImportError(NUMPY_MISSING) from None
    from .addon_ui import register as _register

    _register()


def unregister() -> None:
    from .addon_ui import unregister as _unregister

    _unregister()
