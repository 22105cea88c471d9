"""Export a head with its active take to glTF or FBX, with settings that keep the animation.

The FBX exporter writes no shape-key animation with its defaults (NLA strips and "all actions"
baking); glTF keeps morph animation when exporting the active actions.

The exporter writes into a hidden folder beside the target; its files are renamed over the old
ones only when it succeeded, so a failed export leaves an earlier export byte for byte. An
exporter failure is raised as ExportFailed, one sentence without the traceback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import heads, takes
from ..model_runtime import safe_write
from ..model_runtime.errors import EmoteError


class ExportFailed(EmoteError, RuntimeError):
    """The exporter failed; the message is a sentence for the user (the old file is kept)."""

    def __init__(self, message: str):
        super().__init__("export_failed", message)


@contextmanager
def _selected_head(context, obj):
    """Select exactly the head and its rig for the exporter; restore the selection after."""
    view_layer = context.view_layer
    before = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    rig = heads.find_rig(obj)
    try:
        for o in before:
            o.select_set(False)
        for o in (obj, rig):
            if o is not None:
                o.select_set(True)
        view_layer.objects.active = obj
        yield
    finally:
        for o in view_layer.objects:
            o.select_set(o in before)
        view_layer.objects.active = active


@contextmanager
def _take_range(scene, obj):
    """Scene frame range set to the active take while exporting (FBX bakes the scene range)."""
    take = takes.active(obj)
    old = scene.frame_start, scene.frame_end
    try:
        if take is not None and take.action is not None:
            lo, hi = take.action.frame_range
            scene.frame_start, scene.frame_end = int(round(lo)), int(round(hi))
        yield
    finally:
        scene.frame_start, scene.frame_end = old


def _check(obj, path) -> Path:
    if obj is None or obj.type != "MESH":
        raise ValueError("Select the head mesh to export.")
    take = takes.active(obj)
    if take is None or take.action is None:
        raise ValueError(f"{obj.name} has no take to export yet: press Generate first (or pick "
                         "a take in the EMOTE panel's list), then export.")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise safe_write.cannot_write(path, exc) from exc
    return path


@contextmanager
def _staged(path: Path, what: str):
    """Yield a path in a hidden folder beside `path` for the exporter to write to; on success
    move what it wrote (the file, and a .gltf's .bin and textures) over the old files."""
    safe_write.clean_stale_temps(path)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-",
                                      suffix=safe_write.TEMP_SUFFIX, dir=path.parent))
    except OSError as exc:
        raise safe_write.cannot_write(path, exc) from exc
    try:
        try:
            yield stage / path.name
        except Exception as exc:
            last = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            why = last[-1] if last else type(exc).__name__
            raise ExportFailed(f"The {what} exporter failed ({why}); nothing was written, and "
                               f"an earlier {path.name} is unchanged.") from None
        if not (stage / path.name).is_file():
            raise ExportFailed(f"The {what} exporter wrote no {path.name}; nothing was changed.")
        mode = safe_write.file_mode()
        for written in sorted(stage.rglob("*")):
            if written.is_file():
                dest = path.parent / written.relative_to(stage)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(written, mode)
                os.replace(written, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def export_gltf(context, obj, filepath: str | Path) -> Path:
    """Write the head, its rig and active take as .glb/.gltf (morph targets + jaw joint)."""
    import bpy

    path = _check(obj, filepath)
    fmt = "GLB" if path.suffix.lower() == ".glb" else "GLTF_SEPARATE"
    with _selected_head(context, obj), _take_range(context.scene, obj), \
            _staged(path, "glTF") as staged:
        bpy.ops.export_scene.gltf(
            filepath=str(staged), export_format=fmt, use_selection=True,
            export_animations=True, export_animation_mode="ACTIVE_ACTIONS",
            export_morph=True, export_morph_animation=True, export_skins=True,
            export_force_sampling=True, export_frame_range=True, export_apply=False,
            export_anim_slide_to_zero=False)
    return path


def export_fbx(context, obj, filepath: str | Path) -> Path:
    """Write the head, its rig and active take as .fbx with shape-key animation kept."""
    import bpy

    path = _check(obj, filepath)
    with _selected_head(context, obj), _take_range(context.scene, obj), \
            _staged(path, "FBX") as staged:
        bpy.ops.export_scene.fbx(
            filepath=str(staged), use_selection=True, object_types={"MESH", "ARMATURE"},
            add_leaf_bones=False, bake_anim=True, bake_anim_use_all_bones=True,
            bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
            bake_anim_force_startend_keying=True, bake_anim_step=1.0,
            bake_anim_simplify_factor=0.0, use_armature_deform_only=False)
    return path
