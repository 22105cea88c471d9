"""The EMOTE sidebar, in the 3D Viewport and (with the same Generate) in the Sequencer."""

from __future__ import annotations

import bpy

from ..emote_blender import audio_strips

from . import operators
from .ui_text import chars_per_line, wrap


class EMOTE_UL_takes(bpy.types.UIList):
    """One row per take: its number first (names get cut), the take that plays marked."""

    def draw_item(self, _context, layout, data, item, _icon, _active_data, _active_prop,
                  _index=0, _flt_flag=0):
        live = _plays(data, item)
        name = item.name.rsplit(" take ", 1)[0]
        layout.label(text=f"{item.number}  {name}" + ("  (playing)" if live else ""),
                     icon="PLAY" if live else "ACTION")


def _plays(head, take) -> bool:
    """Whether `take` is what the head's shape keys play now."""
    key = head.data.shape_keys if head.type == "MESH" else None
    ad = key.animation_data if key is not None else None
    return bool(ad and take.action is not None and ad.action == take.action)


def _strip_collection_name(editor) -> str:
    return "strips_all" if hasattr(editor, "strips_all") else "sequences_all"


def draw_emote(layout, context) -> None:
    s = context.scene.emote
    layout.use_property_split = True
    layout.use_property_decorate = True  # the keyframe dot beside Emotion and Intensity
    col = layout.column()
    col.prop(s, "head")
    row = col.row(align=True)
    row.operator("emote.add_flame_head", icon="MESH_MONKEY")
    row.operator("emote.add_default_head", icon="USER")

    c = operators.character(context)  # the head's own settings; None without a head
    seq_scene = audio_strips.sequencer_scene(context)
    ed = seq_scene.sequence_editor
    if ed is None:
        col.label(text="Add the dialogue to the Video Sequencer first", icon="INFO")
    elif c is not None:
        col.prop_search(c, "strip_name", ed, _strip_collection_name(ed), text="Audio",
                        icon="SOUND")

    box = col.box()
    box.prop(s, "model_source")
    if s.model_source == "FOLDER":
        box.prop(s, "checkpoint_dir")
    if c is not None:
        box.prop(c, "style")

        box = col.box()
        box.label(text=f"Emotion of {s.head.name}: hover, I to key", icon="KEYINGSET")
        box.prop(c, "emotion")
        box.prop(c, "intensity", slider=True)
        box.prop(c, "transition_s")

    from .face_life import draw_face_life

    draw_face_life(col, context)

    from .preferences import draw_runtime_box

    draw_runtime_box(col, context)
    row = col.row(align=True)
    row.use_property_split = False
    row.scale_y = 1.4
    state = operators.progress_state()
    if state is not None:
        row.progress(factor=state[0], text=state[1], type="BAR")
        row.operator("emote.cancel", icon="CANCEL", text="")
    else:
        row.operator("emote.generate", icon="PLAY")
    width = chars_per_line(context)
    if s.last_error:
        err = col.box().column(align=True)
        err.alert = True
        for i, line in enumerate(wrap(s.last_error, width)):
            err.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
    for text in (("No target for: " + s.unmatched[:300]) if s.unmatched else "",
                 s.bake_notes[:400]):
        if text:
            info = col.column(align=True)
            for i, line in enumerate(wrap(text, width)):
                info.label(text=line, icon="INFO" if i == 0 else "BLANK1")


def draw_takes(layout, context) -> None:
    head = context.scene.emote.head
    if head is None:
        layout.label(text="No head chosen")
        return
    row = layout.row()
    row.template_list("EMOTE_UL_takes", "", head, "emote_takes", head, "emote_active_take",
                      rows=4)
    row.operator("emote.take_delete", icon="X", text="")
    row = layout.row(align=True)
    row.operator("emote.export_gltf", icon="EXPORT")
    row.operator("emote.export_fbx", icon="EXPORT")


class _Sidebar:
    bl_region_type = "UI"
    bl_category = "EMOTE"


class EMOTE_PT_view3d(_Sidebar, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_label = "EMOTE"
    bl_order = 0

    def draw(self, context):
        draw_emote(self.layout, context)


class EMOTE_PT_view3d_takes(_Sidebar, bpy.types.Panel):
    # a panel of its own, not a sub-panel: a sub-panel kept its old place when an error message
    # made the panel above it taller, and covered the message until the next redraw
    bl_space_type = "VIEW_3D"
    bl_label = "EMOTE Takes"
    bl_order = 1

    def draw(self, context):
        draw_takes(self.layout, context)


class EMOTE_PT_view3d_mapping(_Sidebar, bpy.types.Panel):
    # a panel of its own below the takes, so the main panel (and its error message) stays short
    bl_space_type = "VIEW_3D"
    bl_label = "EMOTE Mapping"
    bl_order = 2

    def draw(self, context):
        from .mapping import draw_mapping

        draw_mapping(self.layout, context)


class EMOTE_PT_sequencer(_Sidebar, bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_label = "EMOTE"
    bl_order = 0

    def draw(self, context):
        draw_emote(self.layout, context)


class EMOTE_PT_sequencer_takes(_Sidebar, bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_label = "EMOTE Takes"
    bl_order = 1

    def draw(self, context):
        draw_takes(self.layout, context)


class EMOTE_PT_sequencer_mapping(_Sidebar, bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_label = "EMOTE Mapping"
    bl_order = 2

    def draw(self, context):
        from .mapping import draw_mapping

        draw_mapping(self.layout, context)


CLASSES = (EMOTE_UL_takes, EMOTE_PT_view3d, EMOTE_PT_view3d_takes, EMOTE_PT_view3d_mapping,
           EMOTE_PT_sequencer, EMOTE_PT_sequencer_takes, EMOTE_PT_sequencer_mapping)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
