# SPDX-License-Identifier: GPL-3.0-or-later
"""EMOTE for Blender: dialogue audio to expressive facial animation (extension entry point).

The extension folder goes on sys.path so `emote_blender` and `model_runtime` import under the
same names here as in the runtime process, which gets the folder on its PYTHONPATH.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def register() -> None:
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)
    from .addon_ui import register as _register

    _register()


def unregister() -> None:
    from .addon_ui import unregister as _unregister

    _unregister()
