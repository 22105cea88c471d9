"""Add-on preferences: which Python runs the EMOTE runtime, and how patient to be with it."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from emote_blender import runtime_client

ADDON_ID = __package__.rpartition(".")[0] or __package__


def prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def default_env_dir() -> Path:
    """The extension's own runtime environment (created by 'Set up runtime')."""
    try:
        user = bpy.utils.extension_path_user(ADDON_ID, path="", create=True)
    except (ValueError, AttributeError):  # not installed as an extension (development checkout)
        user = bpy.utils.user_resource("SCRIPTS", path="emote", create=True)
    return runtime_client.default_runtime_dir(user)


def runtime_python(context=None) -> str:
    """Interpreter for the runtime: $EMOTE_RUNTIME_PYTHON, the preference, else our own env."""
    env = os.environ.get("EMOTE_RUNTIME_PYTHON")
    if env:
        return env
    p = prefs(context)
    if p is not None and p.runtime_python:
        return bpy.path.abspath(p.runtime_python)
    return str(runtime_client.venv_python(default_env_dir()))


class EmotePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    runtime_python: StringProperty(
        name="Runtime Python", subtype="FILE_PATH",
        description="Python interpreter with torch that runs the EMOTE runtime; empty uses the "
                    "extension's own environment made by 'Set up runtime'")
    use_server: BoolProperty(name="Keep runtime warm", default=True,
                             description="Keep one runtime process loaded between Generates")
    stall_timeout_s: FloatProperty(name="Hang timeout", default=180.0, min=10.0, unit="TIME",
                                   subtype="TIME_ABSOLUTE",
                                   description="Stop the runtime when it shows no progress "
                                               "for this long")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "runtime_python")
        py = runtime_python(context)
        ok = Path(py).is_file()
        col.label(text=("Runtime: " + py) if ok else "Runtime not set up yet",
                  icon="CHECKMARK" if ok else "ERROR")
        col.operator("emote.setup_runtime", icon="CONSOLE")
        col.prop(self, "use_server")
        col.prop(self, "stall_timeout_s")
