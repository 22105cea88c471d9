"""The panel's Face life box: blinks, gaze and head motion for the next Generate, and the
per-region strengths that re-bake the active take (emote_blender.face_life does the work)."""

from __future__ import annotations

import bpy

from ..emote_blender import face_life, takes


def _active_take(context):
    head = context.scene.emote.head
    take = takes.active(head) if head is not None else None
    return head, take


def retune(settings, context) -> None:
    """Update of the strength sliders: re-bake the active take from its stored result. The
    slider's own undo step holds the new keys; a take made before this has nothing to re-bake."""
    head, take = _active_take(context)
    if take is None or face_life.load_raw(take.action) is None:
        return
    face_life.rebake(head, take, face_life.scene_strengths(context.scene))


class EMOTE_OT_rebake_take(bpy.types.Operator):
    """Re-apply the strength controls to the active take's keys (no new Generate)"""

    bl_idname = "emote.rebake_take"
    bl_label = "Re-bake take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        _head, take = _active_take(context)
        if take is None:
            cls.poll_message_set("Choose a head with a take first")
            return False
        if face_life.load_raw(take.action) is None:
            cls.poll_message_set("This take was made before strengths could be re-applied; "
                                 "Generate it again")
            return False
        return True

    def execute(self, context):
        head, take = _active_take(context)
        try:
            n = face_life.rebake(head, take, face_life.scene_strengths(context.scene))
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"EMOTE: re-baked {n} curves of {take.name}")
        return {"FINISHED"}


def draw_face_life(layout, context) -> None:
    """Face life settings (for the next Generate) and strengths (for the active take)."""
    s = context.scene.emote
    box = layout.box()
    box.label(text="Face life (next Generate)", icon="HIDE_OFF")
    for toggle, strength in (("use_blinks", "blink_strength"), ("use_gaze", "gaze_strength"),
                             ("use_head_motion", "head_motion_strength")):
        row = box.row(align=True)
        row.use_property_split = False  # [x] Blinks | Strength ----- on one line
        row.use_property_decorate = False
        row.prop(s, toggle)
        sub = row.row(align=True)
        sub.active = getattr(s, toggle)
        sub.prop(s, strength, slider=True)
    box.prop(s, "life_seed")
    box = layout.box()
    box.label(text="Strengths (active take)", icon="MODIFIER")
    for name in face_life.STRENGTH_PROPS:
        box.prop(s, name, slider=name != "smoothing")
    box.operator("emote.rebake_take", icon="FILE_REFRESH")


CLASSES = (EMOTE_OT_rebake_take,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
