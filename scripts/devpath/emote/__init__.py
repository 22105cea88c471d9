# SPDX-License-Identifier: GPL-3.0-or-later
"""This checkout as the package `emote`, the way Blender imports the installed extension.

Blender loads the extension folder as the package `bl_ext.<repo>.emote`, and the extension's
parts import each other relatively (`from ..model_runtime.errors import ...`), so outside
Blender they too must be imported as submodules of one package. With this folder
(scripts/devpath) on sys.path, `import emote` finds this file, which replaces itself by the
checkout root's own `__init__.py` with the checkout as the package's folder: then
`emote.emote_blender.main_job`, `emote.model_runtime.errors` and `emote.addon_ui` are the
checkout's files under one package name. A plain folder on sys.path (not a function to call)
so that `python -m emote.emote_blender.main_job`, subprocesses given PYTHONPATH and
multiprocessing's spawned workers all find it too. pytest gets it from pyproject's
`pythonpath`, `./run demo` and `./run batch-job` from PYTHONPATH, bench/ and scripts/ put it
on sys.path themselves. The runtime process needs none of this: it runs
`python -m model_runtime` with the extension root on PYTHONPATH (emote_blender/runtime_env.py).
"""

import importlib.util
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    __name__, _ROOT / "__init__.py", submodule_search_locations=[str(_ROOT)])
_package = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _package  # the import statement returns what sys.modules holds
_spec.loader.exec_module(_package)
