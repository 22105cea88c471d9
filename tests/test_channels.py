"""Shape-key naming conventions of other pipelines: ARKit spellings and sides, prefixes, case,
Character Creator 4, VRM 0.x / 1.0, VRoid and Ready Player Me, and the weighted preset mixes."""

from __future__ import annotations

import numpy as np
import pytest

from emote.emote_blender import channels
from emote.model_runtime.heads.arkit_channels import ARKIT_BLENDSHAPES, OPEN_HEAD_CHANNELS

OPEN = list(OPEN_HEAD_CHANNELS)


def _arkit(name: str) -> str | None:
    role = channels.identify(name)
    if role is None or role.preset or len(role.sources) != 1:
        return None
    return role.sources[0][0]


APPLE_ARKIT_COUNT = 52  # blend shapes in Apple's ARFaceAnchor.BlendShapeLocation


def test_all_52_apple_names_are_recognised_as_themselves():
    assert len(ARKIT_BLENDSHAPES) == len(set(ARKIT_BLENDSHAPES)) == APPLE_ARKIT_COUNT
    found = {n: _arkit(n) for n in ARKIT_BLENDSHAPES}
    assert found == {n: n for n in ARKIT_BLENDSHAPES}


@pytest.mark.parametrize("name, expected", [
    # sides
    ("mouthSmile_L", "mouthSmileLeft"), ("mouthSmile_R", "mouthSmileRight"),
    ("mouthSmile.L", "mouthSmileLeft"), ("mouthSmile.r", "mouthSmileRight"),
    ("mouthSmile_l", "mouthSmileLeft"), ("eyeBlinkL", "eyeBlinkLeft"),
    ("eyeBlink_Left", "eyeBlinkLeft"), ("L_eyeBlink", "eyeBlinkLeft"),
    ("mouthLowerDown_R", "mouthLowerDownRight"),
    # case
    ("EYEBLINKLEFT", "eyeBlinkLeft"), ("jawopen", "jawOpen"), ("Jaw_Open", "jawOpen"),
    # prefixes
    ("Face.mouthSmile.L", "mouthSmileLeft"), ("blendShape1.eyeBlinkLeft", "eyeBlinkLeft"),
    ("Head:browInnerUp", "browInnerUp"), ("Genesis8Female__jawOpen", "jawOpen"),
    ("CC_Base_Body_Mouth_Smile_L", "mouthSmileLeft"), ("CC_Base_Jaw_Open", "jawOpen"),
    ("HeadMesh__blendShape1.cheekPuff", "cheekPuff"),
    # Character Creator 4 names that differ from ARKit's
    ("Brow_Drop_L", "browDownLeft"), ("Brow_Raise_Inner_R", "browInnerUp"),
    ("Cheek_Raise_R", "cheekSquintRight"), ("Eye_L_Look_L", "eyeLookOutLeft"),
    ("Eye_R_Look_L", "eyeLookInRight"), ("Mouth_Up_Upper_L", "mouthUpperUpLeft"),
    ("Mouth_Roll_In_Lower", "mouthRollLower"), ("Mouth_Funnel_Down_R", "mouthFunnel"),
    ("Mouth_L", "mouthLeft"), ("Mouth_Roll_In_Upper_R", "mouthRollUpper"),
    # FLAME
    ("exp_12", "exp12"), ("Exp 007", "exp7"),
])
def test_naming_conventions(name, expected):
    assert _arkit(name) == expected


@pytest.mark.parametrize("name", ["Basis", "Fcl_ALL_Joy", "viseme_kk", "Cheek_Suck_L",
                                  "Face.somethingElse", "L", "mouthSmileLeftish"])
def test_unknown_names_are_not_guessed(name):
    assert channels.identify(name) is None


def test_existing_contract_and_normalise_still_hold():
    assert channels.normalise("mouth_lower_L") == channels.normalise("mouthLowerLeft")
    m = channels.match_channels(["exp000", "exp001", "exp002"], ["exp_0", "Exp 1"], ["jaw"])
    assert m.shape_keys == {0: "exp_0", 1: "Exp 1"} and m.unmatched == ["exp002"]
    assert m.mixes == {} and m.unknown_keys == []
    m = channels.match_channels(["myOwnShape"], ["my_own_shape"], [])  # same odd name
    assert m.shape_keys == {0: "my_own_shape"}


def test_apple_named_character_is_driven_by_the_open_head_model():
    m = channels.match_channels(OPEN, ["Basis0"] + [f"Face.{n}" for n in ARKIT_BLENDSHAPES], [])
    assert m.jaw_open_key == "Face.jawOpen"  # no jaw bone: the jaw rotation opens it
    assert len(m.shape_keys) == len(OPEN) - 1 and m.mixes == {}
    assert m.unmatched == ["jawOpen"]
    assert m.unknown_keys == ["Basis0"]
    # the 12 ARKit shapes the open head has no channel for are known but idle
    assert len(m.idle_keys) == 12 and "Face.tongueOut" in m.idle_keys


def test_cc4_character():
    keys = ["Eye_Blink_L", "Eye_Blink_R", "Jaw_Open", "Mouth_Smile_L", "Mouth_Smile_R",
            "Brow_Raise_Inner_L", "Brow_Raise_Inner_R", "Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R",
            "Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R", "Cheek_Raise_L", "Mouth_Roll_In_Upper",
            "Cheek_Suck_L", "Eye_L_Look_Up"]
    m = channels.match_channels(OPEN, keys, ["CC_Base_JawRoot"])
    assert m.jaw_bone == "CC_Base_JawRoot" and m.jaw_open_key is None
    sk = {OPEN[c]: k for c, k in m.shape_keys.items()}
    assert sk["eyeBlink_L"] == "Eye_Blink_L" and sk["mouthSmile_R"] == "Mouth_Smile_R"
    assert sk["jawOpen"] == "Jaw_Open"  # a jaw bone: the jawOpen key follows its own channel
    assert sk["browInnerUp"] == "Brow_Raise_Inner_L" and sk["cheekSquint_L"] == "Cheek_Raise_L"
    assert sk["mouthFunnel"] == "Mouth_Funnel_Up_L" and sk["mouthRollUpper"] == \
        "Mouth_Roll_In_Upper"
    funnel = OPEN.index("mouthFunnel")
    # the other quarters (and the right inner brow) take the same channel in full
    assert m.mixes == {"Brow_Raise_Inner_R": [(OPEN.index("browInnerUp"), 1.0)],
                       "Mouth_Funnel_Up_R": [(funnel, 1.0)],
                       "Mouth_Funnel_Down_L": [(funnel, 1.0)],
                       "Mouth_Funnel_Down_R": [(funnel, 1.0)]}
    assert m.unknown_keys == ["Cheek_Suck_L"] and m.idle_keys == ["Eye_L_Look_Up"]


@pytest.mark.parametrize("keys", [
    ["A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow", "Fun",
     "Neutral"],
    ["aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight", "happy", "angry", "sad",
     "relaxed", "neutral"],
])
def test_vrm_presets_are_weighted_mixes(keys):
    m = channels.match_channels(OPEN, keys, [])
    a, i, u, e, o, blink, bl, br, joy, angry, sad, fun, neutral = keys
    col = OPEN.index
    assert m.shape_keys == {} and m.jaw_open_key is None
    assert m.mixes[a] == [(channels.JAW, 1.0)]  # the open vowel follows the jaw
    assert m.mixes[i] == [(col("mouthStretch_L"), 0.5), (col("mouthStretch_R"), 0.5)]
    assert m.mixes[u] == [(col("mouthPucker"), 1.0)] and m.mixes[o] == [(col("mouthFunnel"), 1.0)]
    assert len(m.mixes[e]) == 4
    assert m.mixes[bl] == [(col("eyeBlink_L"), 1.0)] and m.mixes[br] == [(col("eyeBlink_R"), 1.0)]
    assert blink in m.idle_keys  # both eyes are already closed by the one-sided presets
    assert m.mixes[joy] == [(col("mouthSmile_L"), 0.5), (col("mouthSmile_R"), 0.5)]
    assert angry in m.mixes and sad in m.mixes and fun in m.mixes
    assert m.unknown_keys == [neutral]
    assert "jaw" not in m.unmatched and "eyeBlink_L" not in m.unmatched


def test_vrm_presets_stay_idle_on_a_perfect_sync_character():
    keys = ["A", "Blink_L", "Joy", "jawOpen", "eyeBlinkLeft", "mouthSmileLeft", "mouthSmileRight"]
    m = channels.match_channels(OPEN, keys, [])
    assert m.mixes == {} and sorted(m.idle_keys) == ["A", "Blink_L", "Joy"]
    assert m.jaw_open_key == "jawOpen"


def test_vroid_and_ready_player_me_keys():
    m = channels.match_channels(OPEN, ["Fcl_MTH_A", "Fcl_MTH_O", "Fcl_EYE_Close_L",
                                       "Fcl_ALL_Joy", "Fcl_MTH_Joy", "Face.Fcl_BRW_Angry"], [])
    assert set(m.mixes) == {"Fcl_MTH_A", "Fcl_MTH_O", "Fcl_EYE_Close_L", "Fcl_MTH_Joy",
                            "Face.Fcl_BRW_Angry"}
    assert m.unknown_keys == ["Fcl_ALL_Joy"]
    rpm = list(ARKIT_BLENDSHAPES) + ["mouthOpen", "mouthSmile", "viseme_aa", "viseme_PP",
                                     "viseme_sil"]
    m = channels.match_channels(OPEN, rpm, [])
    assert m.mixes == {}  # the ARKit keys carry everything
    assert {"mouthOpen", "mouthSmile", "viseme_aa", "viseme_PP"} <= set(m.idle_keys)
    assert m.unknown_keys == ["viseme_sil"]
    m = channels.match_channels(OPEN, ["viseme_PP", "mouthOpen"], [])
    assert m.mixes["viseme_PP"][0] == (OPEN.index("mouthClose"), 0.5)


def test_flame_model_on_a_vrm_head_drives_the_open_vowel_from_the_jaw():
    m = channels.match_channels([f"exp{i:03d}" for i in range(3)], ["A", "Joy"], [])
    assert m.mixes == {"A": [(channels.JAW, 1.0)]} and m.idle_keys == ["Joy"]
    assert "jaw" not in m.unmatched and len(m.unmatched) == 3


def test_mix_values():
    exp = np.array([[0.2, 0.4], [1.0, 0.0]])
    jaw_open = np.array([0.5, 0.1])
    np.testing.assert_allclose(channels.mix_values([(0, 0.5), (1, 0.5)], exp, jaw_open),
                               [0.3, 0.5])
    np.testing.assert_allclose(channels.mix_values([(channels.JAW, 1.0), (1, 0.25)], exp,
                                                   jaw_open), [0.6, 0.1])
