"""Blender UI of EMOTE: sidebar panels, operators, properties and add-on preferences."""

from __future__ import annotations


def register() -> None:
    import bpy

    from . import face_life, mapping, operators, panels, preferences, properties

    properties.register()
    bpy.utils.register_class(preferences.EmotePreferences)
    operators.register()
    face_life.register()
    mapping.register()
    panels.register()
    bpy.app.handlers.load_pre.append(_stop_runtime)
    bpy.app.handlers.load_post.append(_migrate_loaded_file)


def unregister() -> None:
    import bpy

    from . import face_life, mapping, operators, panels, preferences, properties

    if _stop_runtime in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_stop_runtime)
    if _migrate_loaded_file in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_migrate_loaded_file)
    panels.unregister()
    mapping.unregister()
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


def _migrate_loaded_file(*_args) -> None:
    """A file from before heads kept their own settings: move the scene's onto its head."""
    import bpy

    from ..emote_blender import characters

    for scene in bpy.data.scenes:
        note = characters.migrate_scene(scene)
        if note:
            scene.emote.bake_notes = "EMOTE: " + note
            print("EMOTE:", note)


try:  # a handler that survives loading a file (bpy.app.handlers.persistent)
    import bpy as _bpy

    _migrate_loaded_file = _bpy.app.handlers.persistent(_migrate_loaded_file)
except ImportError:  # imported outside Blender (packaging checks)
    pass
