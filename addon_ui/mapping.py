"""The panel's Mapping box: the head's channel -> shape key rows, presets, JSON files.

emote_blender.mapping holds the rows' meaning and the presets; this module only edits the rows
stored on the head object (`obj.emote.mapping`), which every Generate and re-bake of that head
uses until they are changed.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..emote_blender import bake, characters, generate, mapping
from ..model_runtime.errors import EmoteInputError

PRESET_ITEMS = [(name, name, desc, i)
                for i, (name, (desc, _rows)) in enumerate(mapping.BUILTIN_PRESETS.items())]


def _head(context):
    head = context.scene.emote.head
    return head if head is not None and head.type == "MESH" else None


def model_channels(context) -> list[str]:
    """The expression channels of the panel's model, from its config.json (no runtime)."""
    from .operators import chosen_model

    return generate.checkpoint_channels(chosen_model(context.scene.emote))


class _NeedsHead:
    @classmethod
    def poll(cls, context):
        if _head(context) is None:
            cls.poll_message_set("Choose a head first")
            return False
        return True


def _prop_target(layout, item, **kw) -> None:
    """The row's shape key as a search field over the head's keys (red when not found)."""
    obj = item.id_data
    key = obj.data.shape_keys if obj.type == "MESH" else None
    if key is not None:
        layout.prop_search(item, "target", key, "key_blocks", **kw)
    else:
        layout.prop(item, "target", **kw)


def row_label(item) -> str:
    """'mouthClose x1.2 +0.1': the channel, with its gain and offset when they are not 1 and 0."""
    text = item.channel or "(no channel)"
    if abs(item.gain - 1.0) > 1e-6:
        text += f" x{item.gain:.3g}"
    if abs(item.offset) > 1e-6:
        text += f" {item.offset:+.3g}"
    return text


class EMOTE_UL_mapping(bpy.types.UIList):
    """One row per channel: the channel (with gain and offset when set) and the shape key it
    drives; the selected row's gain and offset are edited below the list."""

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_prop,
                  _index=0, _flt_flag=0):
        split = layout.split(factor=0.45, align=True)
        split.label(text=row_label(item))
        _prop_target(split, item, text="", icon="NONE")  # the sidebar is narrow: no icon


class EMOTE_OT_mapping_fill(_NeedsHead, bpy.types.Operator):
    """Fill the mapping with one row per channel of the chosen model, each with the shape key
    name matching gives it (edit the rows that are wrong)"""

    bl_idname = "emote.mapping_fill"
    bl_label = "From names"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        head = _head(context)
        names = model_channels(context)
        if not names:
            self.report({"ERROR"}, "The chosen model's config.json lists no channels; choose "
                        "another model or add the rows by hand.")
            return {"CANCELLED"}
        characters.set_mapping_rows(head, [])  # name matching alone, then its rows
        cmap = bake.channel_map_for(head, names)
        characters.set_mapping_rows(head, mapping.rows_from_map(cmap, names))
        self.report({"INFO"}, f"EMOTE: {len(head.emote.mapping)} mapping rows from the names")
        return {"FINISHED"}


class EMOTE_OT_mapping_preset(_NeedsHead, bpy.types.Operator):
    """Replace the mapping with a built-in preset"""

    bl_idname = "emote.mapping_preset"
    bl_label = "Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: EnumProperty(name="Preset", items=PRESET_ITEMS)

    def execute(self, context):
        characters.set_mapping_rows(_head(context), mapping.builtin_preset(self.preset))
        return {"FINISHED"}


class EMOTE_OT_mapping_save(_NeedsHead, bpy.types.Operator, ExportHelper):
    """Save the head's mapping as a JSON preset"""

    bl_idname = "emote.mapping_save"
    bl_label = "Save preset"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        try:
            mapping.save_preset(self.filepath, characters.mapping_rows(_head(context)))
        except OSError as exc:
            self.report({"ERROR"}, f"Could not save the mapping preset: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved {self.filepath}")
        return {"FINISHED"}


class EMOTE_OT_mapping_load(_NeedsHead, bpy.types.Operator, ImportHelper):
    """Load a JSON mapping preset onto the head (replaces its rows)"""

    bl_idname = "emote.mapping_load"
    bl_label = "Load preset"
    bl_options = {"REGISTER", "UNDO"}
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        try:
            rows = mapping.load_preset(self.filepath)
        except EmoteInputError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        characters.set_mapping_rows(_head(context), rows)
        return {"FINISHED"}


class EMOTE_OT_mapping_row(_NeedsHead, bpy.types.Operator):
    """Add a row, remove the selected row, or clear the mapping (then names alone match)"""

    bl_idname = "emote.mapping_row"
    bl_label = "Mapping row"
    bl_options = {"REGISTER", "UNDO"}

    action: EnumProperty(items=[("ADD", "Add", "Add a row"),
                                ("REMOVE", "Remove", "Remove the selected row"),
                                ("CLEAR", "Clear", "Remove every row: match by names alone")])

    def execute(self, context):
        c = _head(context).emote
        if self.action == "ADD":
            c.mapping.add()
            c.mapping_index = len(c.mapping) - 1
        elif self.action == "REMOVE" and 0 <= c.mapping_index < len(c.mapping):
            c.mapping.remove(c.mapping_index)
            c.mapping_index = max(0, min(c.mapping_index, len(c.mapping) - 1))
        elif self.action == "CLEAR":
            c.mapping.clear()
        return {"FINISHED"}


def draw_mapping(layout, context) -> None:
    """The EMOTE Mapping panel: presets and files, the rows, the selected row's details."""
    head = _head(context)
    if head is None:
        layout.label(text="No head chosen")
        return
    c = head.emote
    layout.label(text=f"{head.name}: {len(c.mapping)} rows" if len(c.mapping) else
                 f"{head.name}: matched by names (no rows)", icon="SHAPEKEY_DATA")
    row = layout.row(align=True)
    row.operator("emote.mapping_fill", icon="SORTALPHA")
    row.operator_menu_enum("emote.mapping_preset", "preset", text="Preset", icon="PRESET")
    row = layout.row(align=True)
    row.operator("emote.mapping_load", icon="FILEBROWSER")
    row.operator("emote.mapping_save", icon="FILE_TICK")
    split = layout.split(factor=0.45)
    split.label(text="Channel")
    split.label(text="Shape key")
    row = layout.row()
    row.template_list("EMOTE_UL_mapping", "", c, "mapping", c, "mapping_index", rows=6)
    col = row.column(align=True)
    col.operator("emote.mapping_row", icon="ADD", text="").action = "ADD"
    col.operator("emote.mapping_row", icon="REMOVE", text="").action = "REMOVE"
    col.operator("emote.mapping_row", icon="X", text="").action = "CLEAR"
    if 0 <= c.mapping_index < len(c.mapping):
        item = c.mapping[c.mapping_index]
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(item, "channel")
        _prop_target(col, item)
        col.prop(item, "gain")
        col.prop(item, "offset")


CLASSES = (EMOTE_UL_mapping, EMOTE_OT_mapping_fill, EMOTE_OT_mapping_preset,
           EMOTE_OT_mapping_save, EMOTE_OT_mapping_load, EMOTE_OT_mapping_row)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
