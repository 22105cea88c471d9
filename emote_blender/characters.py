"""Each head object is a character: its strip, style, emotion curve and mapping live on it.

addon_ui registers the settings as `obj.emote` (a PropertyGroup, so the emotion and intensity
are keyed on the head object like any property). The scene keeps only which head the panel shows
(`scene.emote.head`) and what is shared (the model, face life, the last Generate's messages), so
two characters in one scene each Generate from their own strip with their own emotion.

Files from before kept these settings on the scene: `migrate_scene` moves them (values, and the
keys of the scene's Emotion and Intensity) onto the scene's head, once, losing nothing.
"""

from __future__ import annotations

from . import blender_compat, emotion_curve
from .mapping import MappingRow

CHARACTER_FIELDS = ("strip_name", "style", "emotion", "intensity", "transition_s")


def settings_of(obj):
    """The character settings of a head object, or None (no head, or EMOTE not registered)."""
    return getattr(obj, "emote", None) if obj is not None else None


def mapping_rows(obj) -> list[MappingRow]:
    """The head's mapping editor rows (empty: channels are matched by name alone)."""
    s = settings_of(obj)
    if s is None or not hasattr(s, "mapping"):
        return []
    return [MappingRow(r.channel, r.target, float(r.gain), float(r.offset)) for r in s.mapping]


def set_mapping_rows(obj, rows: list[MappingRow]) -> None:
    """Replace the head's mapping rows."""
    s = settings_of(obj)
    s.mapping.clear()
    for r in rows:
        item = s.mapping.add()
        item.channel, item.target, item.gain, item.offset = r.channel, r.target, r.gain, r.offset
    s.mapping_index = min(max(s.mapping_index, 0), len(s.mapping) - 1)


def _legacy_curves(scene) -> list:
    return [fc for fc in blender_compat.assigned_fcurves(scene)
            if fc.data_path in emotion_curve.EMOTION_PATHS]


def needs_migration(scene) -> bool:
    """Whether the scene still holds character settings from a file made before they moved."""
    s = getattr(scene, "emote", None)
    if s is None:
        return False
    return any(s.get(k) is not None for k in CHARACTER_FIELDS) or bool(_legacy_curves(scene))


def _copy_curve(src, obj) -> None:
    """Key `obj` at the frames of F-curve `src` (same data path), then copy the keys exactly."""
    points = list(src.keyframe_points)
    for kp in points:
        obj.keyframe_insert(src.data_path, index=-1, frame=kp.co[0])
    dst = blender_compat.find_fcurve(obj, src.data_path)
    for a, b in zip(points, dst.keyframe_points):
        b.co = a.co
        b.interpolation, b.easing = a.interpolation, a.easing
        b.handle_left_type, b.handle_right_type = a.handle_left_type, a.handle_right_type
        b.handle_left, b.handle_right = a.handle_left, a.handle_right
    dst.extrapolation = src.extrapolation
    dst.update()


def _remove_curve(scene, fc) -> None:
    act = scene.animation_data.action
    if not blender_compat.SLOTTED:
        act.fcurves.remove(fc)
        return
    for layer in act.layers:
        for strip in layer.strips:
            for slot in act.slots:
                bag = strip.channelbag(slot)
                if bag is not None and fc in list(bag.fcurves):
                    bag.fcurves.remove(fc)
                    return


def migrate_scene(scene) -> str:
    """Move the scene's character settings of an older file onto its head: the values, and the
    Emotion/Intensity keys of the scene's action (then removed from the scene). Returns what was
    done in words ('' when there was nothing, or no head to move it to yet)."""
    s = getattr(scene, "emote", None)
    head = s.head if s is not None else None
    c = settings_of(head)
    if c is None or not needs_migration(scene):
        return ""
    moved = []
    for k in CHARACTER_FIELDS:
        value = s.get(k)
        if value is not None:
            c[k] = value  # raw ID property: enums are stored as their index, as on the scene
            del s[k]
            moved.append(k)
    for fc in _legacy_curves(scene):
        path = fc.data_path
        _copy_curve(fc, head)
        _remove_curve(scene, fc)
        moved.append(f"{path.split('.')[-1]} keys")
    note = f"settings of this file's scene moved onto {head.name} ({', '.join(moved)})"
    if emotion_curve.needs_evaluation(scene):
        note += ("; the scene's NLA strips or drivers of Emotion/Intensity were left on the "
                 "scene: key the head's Emotion instead")
    return note
