"""The mapping editor's rows without Blender: presets that name what rig_names names, JSON files
that round-trip, and rows laid over name matching (gain, offset, idle channels, Fill)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emote.emote_blender import channels, mapping, rig_names
from emote.emote_blender.mapping import MappingRow
from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.heads.arkit_channels import ARKIT_BLENDSHAPES, OPEN_HEAD_CHANNELS


def test_arkit_and_cc4_preset_targets_are_the_names_matching_gives_their_channel():
    for name in ("ARKit", "CC4"):
        rows = mapping.builtin_preset(name)
        assert {r.channel for r in rows} == set(ARKIT_BLENDSHAPES), name
        for r in rows:
            role = channels.identify(r.target)
            assert role is not None and not role.preset, (name, r)
            assert role.sources == ((r.channel, 1.0),), (name, r)
    cc4 = {r.target for r in mapping.builtin_preset("CC4")}
    assert {"Mouth_Smile_L", "Eye_Blink_R", "Jaw_Open", "Mouth_Funnel_Up_L",
            "Eye_L_Look_L"} <= cc4  # derived spellings and rig_names' split shapes
    assert set(rig_names.CC4_ALIASES) <= cc4


@pytest.mark.parametrize("name, presets", [("VRM 0.x", rig_names.VRM0_PRESETS),
                                           ("VRM 1.0", rig_names.VRM1_PRESETS)])
def test_vrm_presets_are_the_weighted_mixes_of_rig_names(name, presets):
    rows = mapping.builtin_preset(name)
    got: dict[str, list] = {}
    for r in rows:
        got.setdefault(r.target, []).append((r.channel, r.gain))
    assert got == {k: list(mix) for k, mix in presets.items()}


def test_flame_preset_names_the_keys_add_flame_head_makes():
    rows = mapping.builtin_preset("FLAME")
    assert len(rows) == 100 and rows[7] == MappingRow("exp7", "exp007")
    assert all(channels.canonical(r.channel) == channels.canonical(r.target) for r in rows)


def test_every_preset_and_an_edited_mapping_round_trip_through_json(tmp_path):
    edited = [MappingRow("mouthSmile_L", "Face.Smile_Left", 0.75, 0.05),
              MappingRow("jaw", "MouthOpen", 1.5, -0.1), MappingRow("mouthClose", "")]
    for name, rows in [(n, mapping.builtin_preset(n)) for n in mapping.BUILTIN_PRESETS] + [
            ("edited", edited)]:
        path = mapping.save_preset(tmp_path / f"{name}.json", rows, name)
        assert mapping.load_preset(path) == rows, name
        assert json.loads(path.read_text())["name"] == name


@pytest.mark.parametrize("text, words", [
    ("{not json", "not a readable JSON"),
    ('{"rows": []}', "not an EMOTE mapping preset"),
    ('{"emote_mapping": 9, "rows": []}', "format 9"),
    ('{"emote_mapping": 1, "rows": [{"target": "x"}]}', "row 1"),
    ('{"emote_mapping": 1, "rows": [{"channel": "a", "gain": "loud"}]}', "row 1"),
])
def test_a_bad_preset_file_is_refused_in_words(tmp_path, text, words):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(EmoteInputError) as err:
        mapping.load_preset(path)
    assert words in err.value.message


def _values(cmap, exp, jaw_open) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in channels.key_values(cmap, exp,
                                                                               jaw_open)}


def test_rows_set_gain_and_offset_leave_unmapped_channels_idle_and_list_them():
    names = list(OPEN_HEAD_CHANNELS)
    keys = [channels.canonical(n) for n in names]  # an ARKit head in Apple's spelling
    cmap = channels.match_channels(names, keys, ["jaw"])
    rng = np.random.default_rng(0)
    exp, jaw_open = rng.random((20, len(names))), rng.random(20)
    smile = names.index("mouthSmile_L")
    rows = [MappingRow("mouthSmileLeft", "mouthSmileRight", 0.5, 0.1),  # any spelling matches
            MappingRow("mouthClose", ""), MappingRow("tongueTwist", "mouthPucker"),
            MappingRow("mouthFunnel", "NoSuchKey")]
    out = mapping.apply_mapping(cmap, rows, names, keys)
    got, before = _values(out, exp, jaw_open), _values(cmap, exp, jaw_open)
    np.testing.assert_allclose(got["mouthSmileRight"], 0.5 * exp[:, smile] + 0.1)
    assert "mouthSmileLeft" not in got  # its only channel went elsewhere
    assert "mouthClose" not in got and "mouthClose" in out.unmatched
    assert "mouthFunnel" in out.unmatched and "mouthFunnel" not in got
    np.testing.assert_allclose(got["mouthPucker"], before["mouthPucker"])  # untouched by name
    assert any("tongueTwist" in n for n in out.mapping_notes)
    assert any("NoSuchKey" in n for n in out.mapping_notes)
    untouched = set(before) - {"mouthSmileRight", "mouthSmileLeft", "mouthClose", "mouthFunnel"}
    assert set(got) - {"mouthSmileRight"} == untouched
    for k in untouched:
        np.testing.assert_allclose(got[k], before[k], err_msg=k)


@pytest.mark.parametrize("keys, bones", [
    ([channels.canonical(n) for n in OPEN_HEAD_CHANNELS], ["jaw"]),
    (["CC_Base_Body." + t for t in {r.target for r in mapping.builtin_preset("CC4")}], []),
    (list(rig_names.VRM0_PRESETS) + ["eyeBlinkLeft", "Hair_Wave"], ["Jaw_Bone"]),
    (["A", "I", "O", "Blink"], []),
])
def test_fill_from_names_gives_rows_that_bake_exactly_what_names_alone_bake(keys, bones):
    names = list(OPEN_HEAD_CHANNELS)
    cmap = channels.match_channels(names, keys, bones)
    rows = mapping.rows_from_map(cmap, names)
    assert {r.channel for r in rows} >= set(names) - ({"jawOpen"} if not bones else set())
    out = mapping.apply_mapping(cmap, rows, names, keys)
    rng = np.random.default_rng(1)
    exp, jaw_open = rng.random((10, len(names))), rng.random(10)
    want, got = _values(cmap, exp, jaw_open), _values(out, exp, jaw_open)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], err_msg=k)
    assert sorted(out.unmatched) == sorted(cmap.unmatched)


def test_a_key_only_a_row_names_is_driven_not_listed_as_unknown():
    names = ["jawOpen", "mouthClose", "mouthFunnel"]
    keys = ["Jaw_Open", "LipSeal", "Mouth_Funnel"]
    cmap = channels.match_channels(names, keys, [])
    assert cmap.unknown_keys == ["LipSeal"] and "mouthClose" in cmap.unmatched
    out = mapping.apply_mapping(cmap, [MappingRow("mouthClose", "LipSeal", 1.2)], names, keys)
    assert out.unknown_keys == [] and out.unmatched == ["jawOpen"]  # jawOpen: from the jaw
    exp, jaw_open = np.arange(6.0).reshape(2, 3), np.array([0.25, 0.5])
    got = _values(out, exp, jaw_open)
    np.testing.assert_allclose(got["LipSeal"], 1.2 * exp[:, 1])
    np.testing.assert_allclose(got["Jaw_Open"], jaw_open)
