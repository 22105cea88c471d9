"""Scene and object properties of the EMOTE panel: the scene says which head the panel shows
and holds what is shared; each head object keeps its own settings (emotion and intensity
keyframable on it) and mapping rows."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, PointerProperty, StringProperty)

from ..emote_blender import emotion_curve, generate

from . import face_life

EMOTION_ITEMS = [(n.upper(), n.capitalize(), f"Speak with a {n} expression", i)
                 for i, n in enumerate(emotion_curve.EMOTIONS)]


def _is_mesh(_self, obj) -> bool:
    return obj.type == "MESH"


_STYLE_ITEMS: dict = {}  # Blender needs the enum strings kept alive between draws


def _style_items(_self, context):
    """The chosen model's speaking styles; the first (index 0, the default) is its own default."""
    s = (context or bpy.context).scene.emote  # the model is the scene's, the style the head's
    model = bpy.path.abspath(s.checkpoint_dir) if s.model_source == "FOLDER" else "default"
    styles = tuple(generate.checkpoint_styles(model))
    if styles not in _STYLE_ITEMS:
        _STYLE_ITEMS[styles] = [(s, s, f"Speak in the style {s!r} of the model", i)
                                for i, s in enumerate(styles)] or [
            ("", "Model's own", "The model offers no speaking styles to choose from", 0)]
    return _STYLE_ITEMS[styles]


class EmoteMappingRow(bpy.types.PropertyGroup):
    """One row of a head's mapping editor (emote_blender.mapping): channel -> shape key."""

    channel: StringProperty(name="Channel", options=set(),
                            description="Model channel (ARKit, FLAME exp<n>, or 'jaw')")
    target: StringProperty(name="Shape key", options=set(),
                           description="Shape key the channel drives; empty leaves it idle")
    gain: FloatProperty(name="Gain", default=1.0, soft_min=-2.0, soft_max=2.0, options=set(),
                        description="The key is gain x channel + offset")
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0,
                          options=set(), description="Added to the key's value")


class EmoteCharacter(bpy.types.PropertyGroup):
    """A head object's own settings (`obj.emote`): what its next Generate uses."""

    strip_name: StringProperty(name="Audio strip", description="Sound strip of the sequencer "
                               "to animate; empty uses the active or selected sound strip")
    style: EnumProperty(name="Style", items=_style_items, default=0,
                        description="Speaking style (training identity) of the chosen model; "
                                    "the first is the model's default")
    emotion: EnumProperty(name="Emotion", items=EMOTION_ITEMS, default="NEUTRAL",
                          description="Emotion category; keyframe it to change over time")
    intensity: FloatProperty(name="Intensity", min=0.0, max=1.0, default=0.5,
                             description="Emotion intensity (0 mild .. 1 strong); keyframable")
    transition_s: FloatProperty(name="Transition", min=0.0, max=5.0, default=0.4, unit="TIME",
                                subtype="TIME_ABSOLUTE",
                                description="Seconds over which an emotion change blends")
    mapping: CollectionProperty(type=EmoteMappingRow, name="Mapping",
                                description="Channel -> shape key rows laid over the name "
                                            "matching; empty: matched by name alone")
    mapping_index: IntProperty(name="Row", default=0, min=0, options=set())


def _head_changed(self, _context) -> None:
    """The messages belong to the last Generate of the head shown before: clear them when
    another head is chosen (Blender calls this on every assignment, the same head included)."""
    name = self.head.name if self.head is not None else ""
    if self.get("_messages_head", "") != name:
        self.last_error = self.unmatched = self.bake_notes = ""
        self["_messages_head"] = name


class EmoteSettings(bpy.types.PropertyGroup):
    """The scene's side: which head the panel shows, the shared model and face life, and the
    last Generate's messages (progress lives in operators; a head's own settings on obj.emote)."""

    head: PointerProperty(name="Head", type=bpy.types.Object, poll=_is_mesh, update=_head_changed,
                          description="Head mesh to animate (shape keys named after the "
                                      "model's channels, jaw bone in its armature); each head "
                                      "keeps its own strip, style, emotion and mapping")
    model_source: EnumProperty(name="Model", items=[
        ("DEFAULT", "Bundled", "The model that ships with the extension"),
        ("FOLDER", "Checkpoint folder", "A checkpoint folder (config.json + model.safetensors)"),
    ], default="DEFAULT")
    checkpoint_dir: StringProperty(name="Checkpoint", subtype="DIR_PATH")
    # Face life (addon_ui/face_life.py draws them): made with the take by the runtime ...
    use_blinks: BoolProperty(name="Blinks", default=True, options=set(),
                             description="Blink about 10 to 20 times a minute, more at pauses")
    blink_strength: FloatProperty(name="Strength", min=0.0, max=2.0, default=1.0,
                                  options=set(), description="How far the lids close (1: fully)")
    use_gaze: BoolProperty(name="Gaze", default=True, options=set(),
                           description="Eye saccades and fixations on the eye bones")
    gaze_strength: FloatProperty(name="Strength", min=0.0, max=2.0, default=1.0, options=set(),
                                 description="Scale of the eye movements")
    use_head_motion: BoolProperty(name="Head motion", default=True, options=set(),
                                  description="Nods on stressed syllables and a slow sway")
    head_motion_strength: FloatProperty(name="Strength", min=0.0, max=2.0, default=1.0,
                                        options=set(), description="Scale of the head motion")
    life_seed: IntProperty(name="Seed", min=0, default=0, options=set(),
                           description="The same seed makes the same blinks, gaze and head "
                                       "motion again")
    # ... and strengths applied when baking: changing one re-bakes the active take's keys.
    upper_face: FloatProperty(name="Upper face", min=0.0, max=2.0, default=1.0, options=set(),
                              update=face_life.retune, description="Scale of brows, lids and "
                              "nose (not the blinks); re-bakes the active take")
    lower_face: FloatProperty(name="Lower face", min=0.0, max=2.0, default=1.0, options=set(),
                              update=face_life.retune, description="Scale of mouth, cheeks' "
                              "puff and jaw; re-bakes the active take")
    lip_closure: FloatProperty(name="Lip closure", min=0.0, max=2.0, default=1.0,
                               options=set(), update=face_life.retune,
                               description="Extra scale of the lip-pressing shapes (mouthClose, "
                                           "mouthPress, mouthRoll); re-bakes the active take")
    smoothing: FloatProperty(name="Smoothing", min=0.0, max=0.25, default=0.0, options=set(),
                             unit="TIME", subtype="TIME_ABSOLUTE", update=face_life.retune,
                             description="Smooth expression and jaw over this many seconds "
                                         "(a Gaussian); re-bakes the active take")
    last_error: StringProperty(name="Last error")
    unmatched: StringProperty(name="Channels without target")
    bake_notes: StringProperty(name="Bake notes", description="How the last take landed on "
                               "the head: retargeting, shape keys left alone")


class EmoteTake(bpy.types.PropertyGroup):
    """One Generate result on a head: its action(s) and where it came from."""

    number: IntProperty()
    action: PointerProperty(type=bpy.types.Action)
    rig_action: PointerProperty(type=bpy.types.Action)
    first_frame: IntProperty()
    strip: StringProperty()
    emotion: StringProperty()


def _switch_take(obj, _context):
    from ..emote_blender import takes

    if 0 <= obj.emote_active_take < len(obj.emote_takes):
        takes.activate(obj, obj.emote_takes[obj.emote_active_take])


CLASSES = (EmoteMappingRow, EmoteCharacter, EmoteSettings, EmoteTake)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.Scene.emote = PointerProperty(type=EmoteSettings)
    bpy.types.Object.emote = PointerProperty(type=EmoteCharacter)
    bpy.types.Object.emote_takes = CollectionProperty(type=EmoteTake)
    bpy.types.Object.emote_active_take = IntProperty(name="Take", default=-1, min=-1,
                                                     update=_switch_take)


def unregister() -> None:
    del bpy.types.Object.emote_active_take
    del bpy.types.Object.emote_takes
    del bpy.types.Object.emote
    del bpy.types.Scene.emote
    _unregister_classes()
