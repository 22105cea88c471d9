"""The EMOTE sidebar, in the 3D Viewport and (with the same Generate) in the Sequencer."""

from __future__ import annotations

import bpy

from emote_blender import audio_strips


class EMOTE_UL_takes(bpy.types.UIList):
    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_prop,
                  _index=0, _flt_flag=0):
        layout.label(text=item.name, icon="ACTION")


def _strip_collection_name(editor) -> str:
    return "strips_all" if hasattr(editor, "strips_all") else "sequences_all"


def draw_emote(layout, context) -> None:
    s = context.scene.emote
    col = layout.column()
    col.prop(s, "head")
    row = col.row(align=True)
    row.operator("emote.add_flame_head", icon="MESH_MONKEY")
    row.operator("emote.add_default_head", icon="USER")

    seq_scene = audio_strips.sequencer_scene(context)
    ed = seq_scene.sequence_editor
    if ed is not None:
        col.prop_search(s, "strip_name", ed, _strip_collection_name(ed), text="Audio",
                        icon="SOUND")
    else:
        col.label(text="Add the dialogue to the Video Sequencer first", icon="INFO")

    box = col.box()
    box.prop(s, "model_source")
    if s.model_source == "FOLDER":
        box.prop(s, "checkpoint_dir")
    box.prop(s, "style")

    box = col.box()
    box.label(text="Emotion (keyframe these)", icon="KEYINGSET")
    box.prop(s, "emotion")
    box.prop(s, "intensity", slider=True)
    box.prop(s, "transition_s")

    from .preferences import draw_runtime_box

    draw_runtime_box(col, context)
    row = col.row(align=True)
    row.scale_y = 1.4
    if s.running:
        row.prop(s, "progress", text=s.stage or "Working")
        row.operator("emote.cancel", icon="CANCEL", text="")
    else:
        row.operator("emote.generate", icon="PLAY")
    if s.last_error:
        err = col.box()
        err.alert = True
        for line in _wrap(s.last_error, 48):
            err.label(text=line)
    if s.unmatched:
        col.label(text="No target for: " + s.unmatched[:200], icon="INFO")


def draw_takes(layout, context) -> None:
    head = context.scene.emote.head
    if head is None:
        layout.label(text="No head chosen")
        return
    row = layout.row()
    row.template_list("EMOTE_UL_takes", "", head, "emote_takes", head, "emote_active_take",
                      rows=3)
    row.operator("emote.take_delete", icon="X", text="")
    row = layout.row(align=True)
    row.operator("emote.export_gltf", icon="EXPORT")
    row.operator("emote.export_fbx", icon="EXPORT")


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])


class _Sidebar:
    bl_region_type = "UI"
    bl_category = "EMOTE"


class EMOTE_PT_view3d(_Sidebar, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_label = "EMOTE"

    def draw(self, context):
        draw_emote(self.layout, context)


class EMOTE_PT_view3d_takes(_Sidebar, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_label = "Takes"
    bl_parent_id = "EMOTE_PT_view3d"

    def draw(self, context):
        draw_takes(self.layout, context)


class EMOTE_PT_sequencer(_Sidebar, bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_label = "EMOTE"

    def draw(self, context):
        draw_emote(self.layout, context)


class EMOTE_PT_sequencer_takes(_Sidebar, bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_label = "Takes"
    bl_parent_id = "EMOTE_PT_sequencer"

    def draw(self, context):
        draw_takes(self.layout, context)


CLASSES = (EMOTE_UL_takes, EMOTE_PT_view3d, EMOTE_PT_view3d_takes, EMOTE_PT_sequencer,
           EMOTE_PT_sequencer_takes)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
