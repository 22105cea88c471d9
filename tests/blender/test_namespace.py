"""The installed extension lives under its own package name in Blender (issue 18 part 5): enabled
and used, every module of it is `bl_ext.user_default.emote.*`; enabled or disabled, no generic
top-level `emote_blender`, `model_runtime` or `addon_ui` is in sys.modules and the extension's
folder is not on sys.path.

A fresh Blender (a new bpy process with its own user folder), so that nothing this test
session imported counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.blender.conftest import MODULE

pytestmark = pytest.mark.blender

CHECK = r"""
import json, os, sys
import bpy

parts = ("emote_blender", "model_runtime", "addon_ui")
bpy.ops.wm.read_factory_settings(use_empty=True)
res = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default",
                                               enable_on_install=True)
module = sys.argv[2]
assert res == {"FINISHED"} and module in bpy.context.preferences.addons, res
# use it without a runtime: add the default head, read the panel's model styles
assert bpy.ops.emote.add_default_head() == {"FINISHED"}
# (a top-level copy is looked up too, so a failure lists what leaked rather than a KeyError)
generate = (sys.modules.get(module + ".emote_blender.generate")
            or sys.modules["emote_blender.generate"])
styles = list(generate.checkpoint_styles("default"))
ext = os.path.dirname(sys.modules[module].__file__)


def path_into_ext():
    return [p for p in sys.path if os.path.abspath(p) == ext or
            os.path.abspath(p).startswith(ext + os.sep)]


ours = sorted(name for name, m in list(sys.modules.items())
              if (getattr(m, "__file__", None) or "").startswith(ext + os.sep))
enabled = {"ours": ours, "top": sorted(m for m in sys.modules if m.split(".")[0] in parts),
           "styles": styles, "path": path_into_ext()}
bpy.ops.preferences.addon_disable(module=module)
disabled = {"top": sorted(m for m in sys.modules if m.split(".")[0] in parts),
            "path": path_into_ext()}
bpy.ops.wm.read_factory_settings(use_empty=True)
print("RESULT " + json.dumps({"enabled": enabled, "disabled": disabled}), flush=True)
sys.stdout.flush()
os._exit(0)  # the bpy 4.2 wheel may crash at exit after add-ons ran (Blender's bug)
"""


def test_enabled_extension_loads_only_under_its_package_name(extension_zip):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="emote_namespace_user_")
    proc = subprocess.run([sys.executable, "-c", CHECK, str(extension_zip), MODULE],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=env["BLENDER_USER_RESOURCES"])
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT "):])
    enabled, disabled = got["enabled"], got["disabled"]
    assert enabled["top"] == [] and disabled["top"] == []
    assert enabled["path"] == [] and disabled["path"] == []  # the extension's folder not on it
    assert enabled["styles"]  # the bundled default model's speaking styles were read
    ours = enabled["ours"]
    for part in ("addon_ui.operators", "emote_blender.generate", "emote_blender.heads",
                 "model_runtime.errors", "model_runtime.heads.head_model"):
        assert f"{MODULE}.{part}" in ours, part
    assert all(name == MODULE or name.startswith(MODULE + ".") for name in ours), ours
