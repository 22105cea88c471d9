"""Add-on preferences: which Python runs the EMOTE runtime, and how patient to be with it.

Also the runtime's status box (`draw_runtime_box`), drawn here and in the panel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from ..emote_blender import runtime_setup

from .ui_text import chars_per_line, wrap

ADDON_ID = __package__.rpartition(".")[0] or __package__


def prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def user_dir() -> Path:
    """The extension's own user folder (where 'Set up runtime' puts its packages)."""
    try:
        user = bpy.utils.extension_path_user(ADDON_ID, path="", create=True)
    except (ValueError, AttributeError):  # not installed as an extension (development checkout)
        user = bpy.utils.user_resource("SCRIPTS", path="emote", create=True)
    return Path(user)


def setup_folder() -> Path:
    return runtime_setup.setup_folder(user_dir())


def extensions_dir() -> Path:
    """Blender's extensions folder; its `.local` site-packages holds the extensions' wheels."""
    return Path(bpy.utils.user_resource("EXTENSIONS"))


def own_runtime_dirs() -> tuple[str, list[Path]]:
    """How Blender's own Python gets the runtime's packages: ('bundled', [wheel site-packages]),
    ('setup', [the set-up folder]) or ('missing', [])."""
    if runtime_setup.has_bundled_runtime(extensions_dir()):
        return "bundled", [runtime_setup.wheel_site_packages(extensions_dir())]
    folder = setup_folder()
    if runtime_setup.setup_state(folder) == "ready":
        return "setup", [folder]
    return "missing", []


def runtime_python(context=None) -> str:
    """Interpreter for the runtime: $EMOTE_RUNTIME_PYTHON, the preference, else Blender's own
    Python with the bundled wheels or the set-up packages on its path; '' when there is none."""
    env = os.environ.get("EMOTE_RUNTIME_PYTHON")
    if env:
        return env
    p = prefs(context)
    if p is not None and p.runtime_python:
        return bpy.path.abspath(p.runtime_python)
    kind, dirs = own_runtime_dirs()
    runtime_setup.bind_site_dirs(sys.executable, dirs)
    return sys.executable if dirs else ""


def runtime_status(context=None) -> tuple[str, str]:
    """(state, words) for the panel: state is ready, running, failed, outdated, missing or
    badpath (the chosen Runtime Python does not exist)."""
    run = runtime_setup.current()
    if run is not None and run.running:
        return "running", "Setting up the runtime: " + run.progress_text()
    env = os.environ.get("EMOTE_RUNTIME_PYTHON")
    p = prefs(context)
    explicit = env or (bpy.path.abspath(p.runtime_python) if p and p.runtime_python else "")
    if explicit:
        if Path(explicit).is_file():
            return "ready", "Runtime: " + explicit
        return "badpath", (f"Runtime Python {explicit} does not exist: correct it, or clear it "
                           "to use the bundled or set-up runtime")
    kind, _dirs = own_runtime_dirs()
    if kind == "bundled":
        return "ready", "Runtime: bundled with the extension"
    if kind == "setup":
        return "ready", "Runtime: set up (Blender's Python + packages)"
    if run is not None and run.reason():
        return "failed", "Set up failed: " + run.reason()
    if runtime_setup.setup_state(setup_folder()) == "outdated":
        return "outdated", "The runtime packages are out of date: press Repair"
    return "missing", "The EMOTE runtime is not set up yet"


def draw_runtime_box(layout, context, always: bool = False) -> None:
    """Runtime status and its buttons; in the panel (always=False) only when it needs action."""
    state, words = runtime_status(context)
    if state == "ready" and not always:
        return
    box = layout.box()
    col = box.column(align=True)
    col.alert = state in ("failed", "missing", "outdated", "badpath")
    icon = {"ready": "CHECKMARK", "running": "SORTTIME"}.get(state, "ERROR")
    lines = wrap(words, chars_per_line(context))
    col.label(text=lines[0], icon=icon)
    for line in lines[1:]:
        col.label(text=line)
    if state in ("running", "badpath"):
        return
    kind, _dirs = own_runtime_dirs()
    row = box.row(align=True)
    if state in ("missing", "failed"):
        row.operator("emote.setup_runtime", icon="CONSOLE",
                     text="Try again" if state == "failed" else "Set up runtime")
    if state == "outdated" or kind == "setup":
        row.operator("emote.setup_runtime", icon="FILE_REFRESH", text="Repair")
    if kind == "setup" or state == "outdated":
        row.operator("emote.remove_runtime", icon="TRASH", text="Remove")
    if state == "failed":
        box.label(text="Log: " + str(runtime_setup.log_path(setup_folder())))


class EmotePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    runtime_python: StringProperty(
        name="Runtime Python", subtype="FILE_PATH",
        description="Python interpreter with torch that runs the EMOTE runtime; empty uses "
                    "Blender's own Python with the bundled wheels or the packages made by "
                    "'Set up runtime'")
    use_server: BoolProperty(name="Keep runtime warm", default=True,
                             description="Keep one runtime process loaded between Generates")
    stall_timeout_s: FloatProperty(name="Hang timeout", default=180.0, min=10.0, unit="TIME",
                                   subtype="TIME_ABSOLUTE",
                                   description="Stop the runtime when it shows no progress "
                                               "for this long")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "runtime_python")
        draw_runtime_box(col, context, always=True)
        col.prop(self, "use_server")
        col.prop(self, "stall_timeout_s")
