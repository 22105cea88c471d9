"""The expression channels of the bundled open head, named as ARKit blendshapes.

One list shared by the head generator, the teacher and the Blender side, so a model trained for
the open head drives any rig with ARKit-named shape keys.
"""

OPEN_HEAD_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmile_L", "mouthSmile_R", "mouthFrown_L", "mouthFrown_R",
    "mouthDimple_L", "mouthDimple_R", "mouthStretch_L", "mouthStretch_R",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPress_L", "mouthPress_R", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthUpperUp_L", "mouthUpperUp_R",
    "browDown_L", "browDown_R", "browInnerUp", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff", "cheekSquint_L", "cheekSquint_R", "noseSneer_L", "noseSneer_R",
    "eyeBlink_L", "eyeBlink_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
)

# Apple's 52 ARKit blendshape locations (ARFaceAnchor.BlendShapeLocation raw values), the
# spelling face-capture apps and most ARKit-ready characters use for their shape keys. "Left" and
# "Right" are the face's own sides, except in jawLeft/jawRight and mouthLeft/mouthRight, where they
# are the direction of the movement. The open head's channels are a subset, spelt with _L/_R.
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# Jaw rotation (radians about +x) that corresponds to jawOpen = 1. The teacher keeps the jaw
# joint and the jawOpen channel consistent with it, and a rig with no jaw bone receives
# jawOpen = clamp(jaw_x / JAW_OPEN_FULL_RAD, 0, 1).
JAW_OPEN_FULL_RAD: float = 0.45


def mirror_name(name: str) -> str:
    """The channel's left/right counterpart (itself when it has none)."""
    if name.endswith("_L"):
        return name[:-2] + "_R"
    if name.endswith("_R"):
        return name[:-2] + "_L"
    return {"mouthLeft": "mouthRight", "mouthRight": "mouthLeft"}.get(name, name)
