# SPDX-License-Identifier: GPL-3.0-or-later
"""EMOTE for Blender: dialogue audio to expressive facial animation (extension entry point).

The extension folder goes on sys.path so `emote_blender` and `model_runtime` import under the
same names here as in the runtime process, which gets the folder on its PYTHONPATH.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))

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
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)
    from .addon_ui import register as _register

    _register()


def unregister() -> None:
    from .addon_ui import unregister as _unregister

    _unregister()
