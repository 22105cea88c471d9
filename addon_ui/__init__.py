"""Blender UI of EMOTE: sidebar panels, operators, properties and add-on preferences."""

from __future__ import annotations


def register() -> None:
    import bpy

    from . import face_life, operators, panels, preferences, properties

    properties.register()
    bpy.utils.register_class(preferences.EmotePreferences)
    operators.register()
    face_life.register()
    panels.register()
    bpy.app.handlers.load_pre.append(_stop_runtime)


def unregister() -> None:
    import bpy

    from . import face_life, operators, panels, preferences, properties

    if _stop_runtime in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_stop_runtime)
    panels.unregister()
    face_life.unregister()
    operators.unregister()
    bpy.utils.unregister_class(preferences.EmotePreferences)
    properties.unregister()


def _stop_runtime(*_args) -> None:
    """A new file drops the Generate in flight; the warm runtime stays for the next one."""
    from . import operators

    job = operators._ACTIVE.get("job")
    if job is not None:
        job.cancel()
    operators._ACTIVE.clear()
