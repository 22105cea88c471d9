"""Takes: each Generate is a new action on the head; earlier ones stay and can be switched back.

A take is listed in the head object's `emote_takes` collection (registered by addon_ui). Its
action(s) keep a fake user and a muted NLA track of their own, so they survive saving and the
animator can unmute them to layer or compare takes.

The head's own animation from before the first take (shape-key action, the FLAME rig's pose
action) is kept the same way: a fake user and a muted NLA track named ORIGINAL_TRACK whose strip
carries the action's own name, so Generate never orphans the user's keys.
"""

from __future__ import annotations

from . import blender_compat, heads

ORIGINAL_TRACK = "Original animation"


def _targets(obj):
    """(shape-key datablock or None, rig object or None) of a head."""
    return (obj.data.shape_keys if obj.type == "MESH" else None), heads.find_rig(obj)


def next_number(obj) -> int:
    return max((t.number for t in obj.emote_takes), default=0) + 1


def snapshot_assignment(obj) -> dict:
    """The active actions and slots of the head's shape keys and rig, to restore after a failure."""
    snap = {}
    for target in _targets(obj):
        if target is not None:
            ad = target.animation_data
            snap[target.as_pointer()] = (target, ad.action if ad else None,
                                         getattr(ad, "action_slot", None) if ad else None,
                                         ad is not None)
    return snap


def restore_assignment(obj, snap: dict) -> None:
    for target, action, slot, had_ad in snap.values():
        ad = target.animation_data
        if ad is None:
            continue
        if not had_ad:
            target.animation_data_clear()
            continue
        ad.action = action
        if blender_compat.SLOTTED and action is not None and slot is not None:
            ad.action_slot = slot


def keep_user_animation(obj) -> list:
    """Give the head's own assigned actions (not takes) a fake user and a muted NLA track
    "Original animation" before a take replaces them. Returns what was done, for undo_keep."""
    kept = []
    for target in _targets(obj):
        ad = target.animation_data if target is not None else None
        act = ad.action if ad is not None else None
        if act is None or "emote_take" in act:
            continue
        if any(st.action == act for tr in ad.nla_tracks for st in tr.strips):
            continue  # already in this target's NLA (kept before, or the user's own strip)
        slot = getattr(ad, "action_slot", None) if blender_compat.SLOTTED else None
        kept.append((target, act, act.use_fake_user))
        act.use_fake_user = True
        track = ad.nla_tracks.new()
        track.name = ORIGINAL_TRACK
        track.mute = True
        blender_compat.nla_strip_new(track, act.name, int(round(act.frame_range[0])), act, slot)
    return kept


def undo_keep(kept: list) -> None:
    """Take back keep_user_animation (a Generate that failed leaves the scene as it was)."""
    for target, act, had_fake_user in kept:
        ad = target.animation_data
        for track in [t for t in ad.nla_tracks if t.name == ORIGINAL_TRACK
                      and any(st.action == act for st in t.strips)]:
            ad.nla_tracks.remove(track)
        act.use_fake_user = had_fake_user


def add_take(obj, name: str, number: int, action, rig_action, first_frame: int, key, rig,
             info: dict):
    """List a new take on the head and give its actions a fake user and muted NLA tracks."""
    take = obj.emote_takes.add()
    take.name, take.number, take.action, take.rig_action = name, number, action, rig_action
    take.first_frame = int(first_frame)
    take.strip, take.emotion = str(info.get("strip", "")), str(info.get("emotion", ""))
    for act in {action, rig_action} - {None}:
        act.use_fake_user = True
        act["emote_take"] = name
    for target, act in ((key, action), (rig, rig_action)):
        if target is None or act is None:
            continue
        slot = blender_compat.find_slot(act, target)
        if blender_compat.SLOTTED and slot is None:
            continue  # this take does not animate this target
        ad = target.animation_data or target.animation_data_create()
        track = ad.nla_tracks.new()
        track.name = name
        track.mute = True
        blender_compat.nla_strip_new(track, name, first_frame, act, slot)
    return take


def activate(obj, take) -> None:
    """Make `take` the animation the head plays (and remember it as the panel's active take)."""
    key, rig = _targets(obj)
    for target, act in ((key, take.action), (rig, take.rig_action)):
        if target is None:
            continue
        slot = blender_compat.find_slot(act, target) if act is not None else None
        if act is None or (blender_compat.SLOTTED and slot is None):
            if target.animation_data is not None:
                target.animation_data.action = None
            continue
        blender_compat.assign(target, act, slot)
    index = list(obj.emote_takes).index(take)
    if obj.emote_active_take != index:  # the property's update would activate it again
        obj.emote_active_take = index


def find(obj, name: str):
    for t in obj.emote_takes:
        if t.name == name:
            return t
    return None


def forget(obj, name: str, actions=()) -> None:
    """Remove a take's list entry and NLA tracks (used by delete and by failure clean-up)."""
    for target in _targets(obj):
        ad = target.animation_data if target is not None else None
        if ad is None:
            continue
        for track in [t for t in ad.nla_tracks if t.name == name]:
            ad.nla_tracks.remove(track)
    for i, t in enumerate(obj.emote_takes):
        if t.name == name:
            obj.emote_takes.remove(i)
            break
    if obj.emote_active_take >= len(obj.emote_takes):
        obj.emote_active_take = len(obj.emote_takes) - 1


def delete(obj, name: str) -> None:
    """Delete a take and its actions; the latest remaining take becomes active."""
    import bpy

    take = find(obj, name)
    if take is None:
        return
    acts = {take.action, take.rig_action} - {None}
    was_active = any(t is not None and t.animation_data is not None
                     and t.animation_data.action in acts for t in _targets(obj))
    forget(obj, name)
    for act in acts:
        bpy.data.actions.remove(act)
    if was_active and len(obj.emote_takes):
        activate(obj, obj.emote_takes[len(obj.emote_takes) - 1])


def active(obj):
    i = obj.emote_active_take
    return obj.emote_takes[i] if 0 <= i < len(obj.emote_takes) else None
