"""Shape-key names of other character pipelines, and the ARKit channels that drive each.

Plain data, read by `channels` (which does the matching). Names are written in each pipeline's own
spelling; `channels.normalise` folds case, separators and side suffixes before lookup, so a CC4
`Mouth_Smile_L` already equals ARKit's `mouthSmileLeft` and needs no entry here. Only the names
that differ from ARKit after folding are listed.

Two kinds of entry:

- `ALIASES` name one ARKit channel each and are always driven (weight 1). Character Creator 4's
  extended profile splits some ARKit shapes into halves or quarters (`Mouth_Funnel_Up_L`,
  `Mouth_Roll_In_Upper_L` ...), so several keys may share one channel; each part receives the
  channel's full value, as the parts together make the whole shape.
- `PRESETS` are shapes that no single ARKit channel equals (VRM visemes and expressions, Ready
  Player Me's extra keys, VRoid's `Fcl_` keys). Each is a weighted sum of ARKit channels. A preset
  is driven only when none of its source channels drives a key of its own on the same rig, so a
  "perfect sync" VRM that carries both `A` and ARKit keys is not moved twice.
"""

from __future__ import annotations

# --- Character Creator 4 (extended facial profile) -------------------------------------------
# Eye look: `Eye_L_Look_L` is the left eye turning to the character's left, i.e. away from the
# nose (ARKit "out"); `Eye_L_Look_R` turns it toward the nose ("in").
CC4_ALIASES: dict[str, str] = {
    "Brow_Drop_L": "browDownLeft", "Brow_Drop_R": "browDownRight",
    "Brow_Raise_Inner_L": "browInnerUp", "Brow_Raise_Inner_R": "browInnerUp",
    "Brow_Raise_Outer_L": "browOuterUpLeft", "Brow_Raise_Outer_R": "browOuterUpRight",
    "Cheek_Raise_L": "cheekSquintLeft", "Cheek_Raise_R": "cheekSquintRight",
    "Cheek_Puff_L": "cheekPuff", "Cheek_Puff_R": "cheekPuff",
    "Eye_L_Look_L": "eyeLookOutLeft", "Eye_L_Look_R": "eyeLookInLeft",
    "Eye_R_Look_L": "eyeLookInRight", "Eye_R_Look_R": "eyeLookOutRight",
    "Eye_L_Look_Up": "eyeLookUpLeft", "Eye_R_Look_Up": "eyeLookUpRight",
    "Eye_L_Look_Down": "eyeLookDownLeft", "Eye_R_Look_Down": "eyeLookDownRight",
    "Mouth_Up_Upper_L": "mouthUpperUpLeft", "Mouth_Up_Upper_R": "mouthUpperUpRight",
    "Mouth_Down_Lower_L": "mouthLowerDownLeft", "Mouth_Down_Lower_R": "mouthLowerDownRight",
    "Mouth_Roll_In_Upper": "mouthRollUpper", "Mouth_Roll_In_Lower": "mouthRollLower",
    "Mouth_Roll_In_Upper_L": "mouthRollUpper", "Mouth_Roll_In_Upper_R": "mouthRollUpper",
    "Mouth_Roll_In_Lower_L": "mouthRollLower", "Mouth_Roll_In_Lower_R": "mouthRollLower",
    "Mouth_Funnel_Up_L": "mouthFunnel", "Mouth_Funnel_Up_R": "mouthFunnel",
    "Mouth_Funnel_Down_L": "mouthFunnel", "Mouth_Funnel_Down_R": "mouthFunnel",
    "Mouth_Pucker_Up_L": "mouthPucker", "Mouth_Pucker_Up_R": "mouthPucker",
    "Mouth_Pucker_Down_L": "mouthPucker", "Mouth_Pucker_Down_R": "mouthPucker",
}

ALIASES: dict[str, str] = {**CC4_ALIASES}

# --- Weighted presets -------------------------------------------------------------------------
# Visemes. Choices: the open vowel is mostly jaw (A <- jawOpen); I is spread lips (the two
# stretches); U is rounded, protruded lips (pucker); O is rounded, open lips (funnel); E sits
# between spread and open (a little smile plus the lower lip dropped). A sung "o" therefore
# shows O plus some A, as the jaw opens for it too.
_A = (("jawOpen", 1.0),)
_I = (("mouthStretchLeft", 0.5), ("mouthStretchRight", 0.5))
_U = (("mouthPucker", 1.0),)
_E = (("mouthSmileLeft", 0.25), ("mouthSmileRight", 0.25),
      ("mouthLowerDownLeft", 0.25), ("mouthLowerDownRight", 0.25))
_O = (("mouthFunnel", 1.0),)
# Bilabials seal the lips: half closure, half press.
_PP = (("mouthClose", 0.5), ("mouthPressLeft", 0.25), ("mouthPressRight", 0.25))
# Expressions, each the ARKit channels that carry it, averaged over the sides so a full
# expression reaches 1: joy is the smile; anger the lowered brows; sorrow the frown with the
# inner brows raised; fun/relaxed the smiling eyes (cheek squint); surprise wide eyes with the
# inner brows raised.
_JOY = (("mouthSmileLeft", 0.5), ("mouthSmileRight", 0.5))
_ANGRY = (("browDownLeft", 0.5), ("browDownRight", 0.5))
_SORROW = (("mouthFrownLeft", 0.25), ("mouthFrownRight", 0.25), ("browInnerUp", 0.5))
_FUN = (("cheekSquintLeft", 0.5), ("cheekSquintRight", 0.5))
_SURPRISED = (("eyeWideLeft", 0.25), ("eyeWideRight", 0.25), ("browInnerUp", 0.5))
_BLINK = (("eyeBlinkLeft", 0.5), ("eyeBlinkRight", 0.5))
_BLINK_L = (("eyeBlinkLeft", 1.0),)
_BLINK_R = (("eyeBlinkRight", 1.0),)
_FROWN = (("mouthFrownLeft", 0.5), ("mouthFrownRight", 0.5))
_BROW_OUTER = (("browOuterUpLeft", 0.5), ("browOuterUpRight", 0.5))
_EYE_WIDE = (("eyeWideLeft", 0.5), ("eyeWideRight", 0.5))

Mix = tuple[tuple[str, float], ...]

# VRM 0.x preset blend shape names (Blink_L/R and VRM 1.0's blinkLeft/Right fold together).
VRM0_PRESETS: dict[str, Mix] = {
    "A": _A, "I": _I, "U": _U, "E": _E, "O": _O,
    "Blink": _BLINK, "Blink_L": _BLINK_L, "Blink_R": _BLINK_R,
    "Joy": _JOY, "Angry": _ANGRY, "Sorrow": _SORROW, "Fun": _FUN, "Surprised": _SURPRISED,
}
# VRM 1.0 expression presets.
VRM1_PRESETS: dict[str, Mix] = {
    "aa": _A, "ih": _I, "ou": _U, "ee": _E, "oh": _O,
    "blink": _BLINK, "blinkLeft": _BLINK_L, "blinkRight": _BLINK_R,
    "happy": _JOY, "angry": _ANGRY, "sad": _SORROW, "relaxed": _FUN, "surprised": _SURPRISED,
}
# VRoid Studio's own face keys as the VRM importer shows them. Only the mouth shapes, the eye
# closures and the region parts of the expressions are driven; the `Fcl_ALL_*` whole-face
# expressions would close the eyes on every smile, so they stay unknown.
VROID_PRESETS: dict[str, Mix] = {
    "Fcl_MTH_A": _A, "Fcl_MTH_I": _I, "Fcl_MTH_U": _U, "Fcl_MTH_E": _E, "Fcl_MTH_O": _O,
    "Fcl_EYE_Close": _BLINK, "Fcl_EYE_Close_L": _BLINK_L, "Fcl_EYE_Close_R": _BLINK_R,
    "Fcl_MTH_Joy": _JOY, "Fcl_MTH_Sorrow": _FROWN, "Fcl_MTH_Angry": _FROWN,
    "Fcl_BRW_Angry": _ANGRY, "Fcl_BRW_Sorrow": (("browInnerUp", 1.0),),
    "Fcl_BRW_Surprised": _BROW_OUTER, "Fcl_EYE_Surprised": _EYE_WIDE,
}
# Ready Player Me: the 52 ARKit keys in Apple's spelling (no entry needed) plus two summary keys
# and the Oculus visemes; of those only the vowels and the bilabial are driven.
RPM_PRESETS: dict[str, Mix] = {
    "mouthOpen": _A, "mouthSmile": _JOY,
    "viseme_aa": _A, "viseme_I": _I, "viseme_U": _U, "viseme_E": _E, "viseme_O": _O,
    "viseme_PP": _PP,
}

PRESETS: dict[str, Mix] = {**VRM0_PRESETS, **VRM1_PRESETS, **VROID_PRESETS, **RPM_PRESETS}

# Names that belong to one pipeline's namespace: they match only as a whole, never by stripping
# a prefix (VRoid's Fcl_MTH_Joy must not fall through to the VRM preset Joy).
WHOLE_NAME_PREFIXES: tuple[str, ...] = ("fcl_", "viseme_")
# Prefixes ending in an underscore that belong to a pipeline rather than to the shape's name
# (prefixes ending in ".", ":", "|" or "__" are stripped generically).
PIPELINE_PREFIXES: tuple[str, ...] = ("cc_base_",)
