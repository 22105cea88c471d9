"""The few places where Blender 4.2 LTS and 5.0 differ: strips, actions and their F-curves.

4.4 introduced slotted actions (layers, strips, channelbags per slot) and 5.0 removed the legacy
`Action.fcurves`; 5.0 also renamed `SequenceEditor.sequences` to `strips`.
"""

from __future__ import annotations

import bpy

SLOTTED = bpy.app.version >= (4, 4, 0)


def all_strips(editor) -> list:
    """Every strip of a sequence editor, including those inside meta strips."""
    coll = getattr(editor, "strips_all", None)
    if coll is None:
        coll = editor.sequences_all
    return list(coll)


def new_sound_strip(editor, name: str, filepath: str, channel: int, frame_start: int):
    """Add a sound strip (tests and scripts; the UI uses Blender's own operator)."""
    coll = getattr(editor, "strips", None)
    if coll is None:
        coll = editor.sequences
    return coll.new_sound(name, filepath, channel, frame_start)


def _slot_id_type(id_data) -> str:
    return {"Key": "KEY", "Object": "OBJECT", "Scene": "SCENE"}.get(
        type(id_data).__name__, getattr(id_data, "id_type", "OBJECT"))


def assigned_fcurves(id_data) -> list:
    """F-curves that animate `id_data` through its assigned action (empty when none)."""
    ad = getattr(id_data, "animation_data", None)
    if ad is None or ad.action is None:
        return []
    return action_fcurves(ad.action, getattr(ad, "action_slot", None) if SLOTTED else None)


def action_fcurves(action, slot=None) -> list:
    """F-curves of an action (for one slot on slotted actions; all slots when slot is None)."""
    if not SLOTTED:
        return list(action.fcurves)
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            slots = [slot] if slot is not None else list(action.slots)
            for s in slots:
                bag = strip.channelbag(s)
                if bag is not None:
                    out.extend(bag.fcurves)
    return out


def find_fcurve(id_data, data_path: str, index: int = 0):
    """The F-curve for `data_path[index]` in the ID's assigned action, or None."""
    for fc in assigned_fcurves(id_data):
        if fc.data_path == data_path and fc.array_index == index:
            return fc
    return None


class ActionWriter:
    """Creates F-curves in a new action for one or more IDs, hiding slots vs legacy groups."""

    def __init__(self, action):
        self.action = action
        self._bags: dict[int, object] = {}
        if SLOTTED:
            layer = action.layers.new("Layer")
            self._strip = layer.strips.new(type="KEYFRAME")

    def fcurves_for(self, id_data):
        """The F-curve collection to write `id_data`'s channels into."""
        key = id_data.as_pointer()
        if not SLOTTED:
            return self.action.fcurves
        if key not in self._bags:
            slot = self.action.slots.new(id_type=_slot_id_type(id_data), name=id_data.name)
            self._bags[key] = self._strip.channelbag(slot, ensure=True)
        return self._bags[key].fcurves


def assign(id_data, action, slot=None) -> None:
    """Make `action` (and on 4.4+ its `slot`) the active animation of `id_data`."""
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if SLOTTED and action is not None:
        if slot is None:
            slot = find_slot(action, id_data)
        if slot is not None:
            ad.action_slot = slot


def find_slot(action, id_data):
    """The slot of `action` meant for `id_data` (by id type and name), or None."""
    if not SLOTTED or action is None:
        return None
    want = _slot_id_type(id_data)
    fallback = None
    for s in action.slots:
        if s.target_id_type == want:
            if s.name_display == id_data.name:
                return s
            fallback = fallback or s
    return fallback


def nla_strip_new(track, name: str, start: int, action, slot=None):
    """Add an NLA strip playing `action` (bound to `slot` on 4.4+)."""
    strip = track.strips.new(name, int(start), action)
    if SLOTTED and slot is not None and getattr(strip, "action_slot", None) != slot:
        try:
            strip.action_slot = slot
        except (AttributeError, TypeError, RuntimeError):
            pass
    return strip
