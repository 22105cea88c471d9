"""A real third-party ARKit head end to end (headless): the Face Cap head (licence record in
tests/data/third_party/facecap/NOTICE.md) imported with Blender's glTF importer, its 52 shapes
matched by name, a take generated onto it from a dev clip with the default model, and its lips
measured on the evaluated mesh: they close on every bilabial and open on the vowels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.blender.conftest import ROOT, add_sound_strip, run_runtime_py

pytestmark = pytest.mark.blender

DEV_CLIP = "vm-tocallnum"  # "press 1 to call this number": P, M and B
ALIGN_CACHE = ROOT / "data" / "align_cache" / "dev"  # the one bench/eval_lipsync.py fills

# Run in the runtime interpreter: the training package (alignment, metrics) is not part of the
# installed extension that Blender imports, and pocketsphinx is not in Blender's Python.
_ALIGN_CODE = """
import json, sys
from pathlib import Path
from model_runtime.training import align
key = sys.argv[1]
try:
    keys = align.dev_clip_keys()
except FileNotFoundError as exc:
    print(json.dumps({"skip": f"no dev clip list ({exc}); set EMOTE_SHARED_DIR"}))
    raise SystemExit
wav = align.ASTERISK_SOUNDS / f"{key}.wav"
if key not in keys:
    print(json.dumps({"error": f"{key} is no longer a dev clip"}))
elif not wav.is_file():
    print(json.dumps({"skip": f"{wav} is missing: apt-get install asterisk-core-sounds-en-wav"}))
else:
    res = align.align_cached(None, key, align.load_asterisk_clip(key),
                             align.asterisk_transcripts()[key], Path(sys.argv[2]))
    print(json.dumps({"wav": str(wav), "phones": res["phones"] if res else None}))
"""

_METRICS_CODE = """
import json, sys
import numpy as np
from model_runtime.training import metrics
d = np.load(sys.argv[1])
print(json.dumps(metrics.clip_metrics(d["g"], d["w"], json.loads(sys.argv[2]), 25.0)))
"""


@pytest.fixture(scope="module")
def facecap_glb():
    from tests.helpers import third_party_head

    try:
        return third_party_head.plain_glb()
    except third_party_head.HeadUnavailable as exc:
        pytest.skip(f"the Face Cap test head is not at hand: {exc}")


@pytest.fixture(scope="module")
def dev_clip():
    """(wav path, phones) of the dev clip, aligned by pocketsphinx (cached like the bench's)."""
    got = json.loads(run_runtime_py(_ALIGN_CODE, DEV_CLIP, str(ALIGN_CACHE)))
    if "skip" in got:
        pytest.skip(got["skip"])
    assert "error" not in got, got["error"]
    assert got["phones"], f"pocketsphinx could not align {DEV_CLIP}"
    return Path(got["wav"]), got["phones"]


def _import(scene, path):
    from bench.eval_third_party_head import import_head
    from bl_ext.user_default.emote.emote_blender import main_job

    main_job.set_fps(scene, 25.0)
    return import_head(path)


def test_face_cap_head_matches_its_arkit_shapes_and_lips(fresh, facecap_glb):
    from bench.eval_third_party_head import arkit_matches, lip_landmarks
    from bl_ext.user_default.emote.emote_blender import channels, mouth_close, retargeting
    from bl_ext.user_default.emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

    obj = _import(fresh, facecap_glb)
    found, missing, unknown = arkit_matches(obj)
    assert len(found) >= 50, missing
    assert unknown == []
    names = [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]
    cmap = channels.match_channels(list(OPEN_HEAD_CHANNELS), names, [])
    assert cmap.jaw_open_key == "jawOpen" and cmap.unknown_keys == []
    assert cmap.shape_keys[list(OPEN_HEAD_CHANNELS).index("mouthSmile_L")] == "mouthSmile_L"

    # The inner lips are where the lips meet at rest, not the lower lip's front.
    marks = lip_landmarks(obj)
    co = {n: np.array(obj.data.vertices[i].co) for n, i in marks.items()}
    width = np.linalg.norm(co["mouth_corner_left"] - co["mouth_corner_right"])
    assert np.linalg.norm(co["lip_upper_inner"] - co["lip_lower_inner"]) < 0.01 * width
    # Its mouthClose is sculpted on top of jawOpen (alone it crosses the lips); the open head's
    # is not.
    assert mouth_close.closes_through(retargeting.head_model_of(obj))
    assert not mouth_close.closes_through(retargeting._open_head())


def test_generate_onto_face_cap_head_seals_bilabials(fresh, facecap_glb, dev_clip, tmp_path):
    from bench.eval_third_party_head import life_size_mm, lip_landmarks, lip_signals_on_mesh
    from bl_ext.user_default.emote.emote_blender import face_life, generate
    from bl_ext.user_default.emote.model_runtime import strengths

    scene = fresh
    obj = _import(scene, facecap_glb)
    demo = obj.data.shape_keys.animation_data.action  # the Face Cap take the file carries
    wav, phones = dev_clip
    strip = add_sound_strip(scene, DEV_CLIP, wav, 1)
    take, cmap, _job = generate.generate_sync(scene, obj, strip, "default", "",
                                              os.environ["EMOTE_RUNTIME_PYTHON"])
    assert cmap.jaw_open_key == "jawOpen" and cmap.unknown_keys == []
    ad = obj.data.shape_keys.animation_data
    assert ad.action == take.action
    # The file's own take stays, muted in the NLA (the importer's track, which Generate keeps).
    assert any(tr.mute and st.action == demo for tr in ad.nla_tracks for st in tr.strips)

    n = int(round((strip.frame_final_end - strip.frame_final_start)))
    frames = take.first_frame + np.arange(n)
    marks = lip_landmarks(obj)
    g, w = lip_signals_on_mesh(scene, obj, marks, frames, life_size_mm(obj, marks))
    np.savez(tmp_path / "lips.npz", g=g, w=w)
    m = json.loads(run_runtime_py(_METRICS_CODE, str(tmp_path / "lips.npz"), json.dumps(phones)))
    assert m["closure_n"] >= 3
    assert m["closure_hits"] == m["closure_n"], (m["seal_gaps_mm"], m["tau"])
    assert np.median(m["open_gaps_mm"]) > 5.0  # and the mouth opens for the vowels
    assert m["false_hits"] <= m["false_n"] // 4

    def close_and_jaw_open():
        kb = obj.data.shape_keys.key_blocks
        out = []
        for f in frames:
            scene.frame_set(int(f))
            out.append((kb["mouthClose"].value, kb["jawOpen"].value))
        return np.array(out).T

    close, jaw_open = close_and_jaw_open()
    assert close.max() > 0.05  # the model's lip closure is there ...
    assert np.all(close <= jaw_open + 1e-6)  # ... within the jaw's opening
    # Re-applying strengths (lip closure doubled) keeps it there.
    assert face_life.rebake(obj, take, {**strengths.NEUTRAL, "lip_closure": 2.0}) > 0
    close2, jaw_open2 = close_and_jaw_open()
    assert np.all(close2 <= jaw_open2 + 1e-6) and close2.sum() > close.sum()
