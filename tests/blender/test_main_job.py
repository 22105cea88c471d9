"""The main job (`./run demo`) end to end on a tiny checkpoint, and the warm runtime."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.blender.conftest import DEVPATH, ROOT, bpy, run_runtime_py, write_wav

# The PyPI bpy 4.2 wheel is built without Audaspace and cannot create sound strips; the jobs
# need them, so on that wheel they are covered by the bpy 5.0.1 run of this file instead.
needs_sound_strips = pytest.mark.skipif(
    not bpy.app.build_options.audaspace,
    reason="this bpy build has no Audaspace (PyPI bpy 4.2 wheel): sound strips cannot be made; "
           "the jobs are tested on bpy 5.0.1")

pytestmark = pytest.mark.blender
FPS = 25


@pytest.fixture(scope="session")
def open_head_checkpoint(tmp_path_factory) -> Path:
    """A tiny random checkpoint whose outputs are the open head's channels."""
    folder = tmp_path_factory.mktemp("ckpt_open") / "tiny_open"
    run_runtime_py(
        "import sys, torch; torch.manual_seed(0)\n"
        "from model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS\n"
        "from model_runtime.checkpoints import tiny_config, build_model, save_checkpoint\n"
        "cfg = tiny_config(list(OPEN_HEAD_CHANNELS), identities=('calm', 'lively'),\n"
        "                  head_id='open_head_v1')\n"
        "save_checkpoint(build_model(cfg), cfg, sys.argv[1])\n", str(folder))
    return folder


def run_main_job(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, EMOTE_RUNTIME_PYTHON=os.environ["EMOTE_RUNTIME_PYTHON"],
               PYTHONPATH=str(DEVPATH))
    return subprocess.run([sys.executable, "-m", "emote.emote_blender.main_job", *args],
                          capture_output=True, text=True, cwd=str(ROOT), env=env,
                          timeout=timeout)


def glb_json(path: Path) -> dict:
    """The JSON chunk of a .glb file."""
    data = path.read_bytes()
    magic, _version, _length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF"
    n, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    return json.loads(data[20:20 + n])


@needs_sound_strips
def test_main_job_writes_every_output(tmp_path, open_head_checkpoint):
    seconds = 1.6
    wav = write_wav(tmp_path / "hello line.wav", seconds, seed=3)
    out = tmp_path / "out"
    proc = run_main_job("--audio", str(wav), "--model", str(open_head_checkpoint),
                        "--emotion", "neutral:0", "happy:0.5", "surprise:1.0",
                        "--intensity", "0.2:0", "0.9:1.2", "--out", str(out),
                        "--fps", str(FPS), "--size", "96", "--preview-frames", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    name = "hello line"
    expected = {"glTF": out / f"{name}.glb", "FBX": out / f"{name}.fbx",
                "Blender file": out / f"{name}.blend", "plot": out / f"{name}_curves.png"}
    for label, path in expected.items():
        assert path.is_file() and path.stat().st_size > 0, label
        assert f"{label}" in proc.stdout and str(path) in proc.stdout, label
    video = [p for p in out.glob(f"{name}_preview.*")]
    assert len(video) == 1 and video[0].stat().st_size > 1000, video
    clip = bpy.data.movieclips.load(str(video[0]))
    width, height = clip.size
    bpy.data.movieclips.remove(clip)
    assert height == 96 and width > 96, (width, height)  # front and three-quarter side by side
    import aud  # Blender's own audio library decodes the mp4's sound track

    sound = aud.Sound(str(video[0])).data()
    assert sound.size > 0 and float(np.abs(sound).mean()) > 1e-3, "the preview has no sound"
    frames = round(seconds * FPS)

    # glTF: morph-weight and jaw-rotation animation with one key per frame, no validator errors.
    gltf = glb_json(expected["glTF"])
    assert len(gltf["animations"]) == 1
    channels = gltf["animations"][0]["channels"]
    paths = {c["target"]["path"] for c in channels}
    assert {"weights", "rotation"} <= paths, paths
    samplers = gltf["animations"][0]["samplers"]
    for c in channels:
        node = gltf["nodes"][c["target"]["node"]]["name"]
        if c["target"]["path"] == "weights" or (node, c["target"]["path"]) == ("jaw", "rotation"):
            inp = gltf["accessors"][samplers[c["sampler"]]["input"]]
            assert inp["count"] == frames, c
    from tests.blender.test_heads_export import validate_gltf

    report = validate_gltf(expected["glTF"])
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]

    # FBX: re-imported, the head's shape keys are animated over every frame.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(expected["FBX"]))
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys]
    assert len(meshes) == 1
    from bl_ext.user_default.emote.emote_blender import blender_compat

    curves = blender_compat.assigned_fcurves(meshes[0].data.shape_keys)
    animated = {fc.data_path for fc in curves if len(fc.keyframe_points) == frames}
    assert len(animated) >= 30, len(animated)
    values = np.array([[kp.co[1] for kp in fc.keyframe_points] for fc in curves
                       if len(fc.keyframe_points) == frames])
    assert np.ptp(values, axis=1).max() > 1e-3  # it moves

    # .blend: the take's action (shape keys + jaw) is in the file.
    with bpy.data.libraries.load(str(expected["Blender file"])) as (src, dst):
        takes = [a for a in src.actions if "take 1" in a]
        dst.actions = takes
    assert takes, "no take action in the .blend"
    fcurves = [fc for a in dst.actions for fc in blender_compat.action_fcurves(a)]
    assert any("key_blocks" in fc.data_path for fc in fcurves)
    assert any("rotation_quaternion" in fc.data_path for fc in fcurves)
    assert all(len(fc.keyframe_points) == frames for fc in fcurves)
    with bpy.data.libraries.load(str(expected["Blender file"])) as (src, dst):
        cameras = sorted(o for o in src.objects if o.startswith("EMOTE preview camera"))
    assert cameras == ["EMOTE preview camera_front", "EMOTE preview camera_three_quarter"]
    bpy.ops.wm.read_factory_settings(use_empty=True)

    # The plot: a real PNG drawn by the runtime (matplotlib), not blank.
    img = bpy.data.images.load(str(expected["plot"]))
    w, h = img.size
    px = np.array(img.pixels[:], dtype=np.float32).reshape(h, w, -1)[..., :3]
    bpy.data.images.remove(img)
    assert w == 1400 and h > 800 and px.std() > 0.1
    assert "warning" not in proc.stdout


@needs_sound_strips
def test_main_job_without_matplotlib_still_finishes(tmp_path, open_head_checkpoint):
    """A runtime set up before matplotlib was pinned: no plot, a warning in words, all else."""
    hide = tmp_path / "no_matplotlib"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
    wav = write_wav(tmp_path / "line.wav", 1.0, seed=4)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), str(DEVPATH)]))
    proc = subprocess.run([sys.executable, "-m", "emote.emote_blender.main_job", "--audio", str(wav),
                           "--model", str(open_head_checkpoint), "--out", str(out), "--fps",
                           str(FPS), "--no-video"], capture_output=True, text=True,
                          cwd=str(ROOT), env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    warning = [ln for ln in proc.stdout.splitlines() if "warning: no curve plot" in ln]
    assert len(warning) == 1 and "matplotlib is not installed" in warning[0], proc.stdout
    assert "pip install matplotlib==" in warning[0]
    assert not (out / "line_curves.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries
    assert (out / "line.glb").is_file() and (out / "line.blend").is_file()
    assert "plot " not in proc.stdout.split("Outputs:")[-1]


def test_main_job_reports_bad_input_in_words(tmp_path):
    proc = run_main_job("--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                        "--no-video")
    assert proc.returncode == 2
    assert "Model folder not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_main_job("--emotion", "gleeful:0", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Unknown emotion 'gleeful'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_main_job_without_default_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTE_DEFAULT_MODEL_DIR", str(tmp_path / "no_model"))
    proc = run_main_job("--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "No default model is installed" in proc.stderr


def test_second_generate_reuses_warm_runtime(fresh, open_head_checkpoint, tmp_path):
    """The warm `serve` process answers the second Generate: same process, no start-up cost."""
    from bl_ext.user_default.emote.emote_blender import generate, runtime_client
    from bl_ext.user_default.emote.emote_blender.main_job import load_head_model
    from bl_ext.user_default.emote.emote_blender import heads
    from tests.blender.conftest import RUNTIME_PY, add_sound_strip

    scene = fresh
    head, _rig = heads.build_head(load_head_model(None))
    strip = add_sound_strip(scene, "warm", write_wav(tmp_path / "warm.wav", 1.0), 1)
    runtime_client.shutdown_server()
    times, servers = [], []
    try:
        for _ in range(2):
            t = time.perf_counter()
            generate.generate_sync(scene, head, strip, str(open_head_checkpoint), "calm",
                                   RUNTIME_PY, str(tmp_path), use_server=True)
            times.append(time.perf_counter() - t)
            servers.append((runtime_client._SERVER, runtime_client._SERVER.proc.pid))
        assert servers[0] == servers[1]
        log = (servers[0][0].folder / "stdout.jsonl").read_text()
        assert log.count('"ready"') == 1
        assert times[1] < times[0] / 2, times  # no interpreter + torch start-up the second time
    finally:
        runtime_client.shutdown_server()
    assert len(head.emote_takes) == 2


@needs_sound_strips
def test_batch_job_exports_one_gltf_per_result_and_resumes(tmp_path):
    from bl_ext.user_default.emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

    results = tmp_path / "results"
    results.mkdir()
    rng = np.random.default_rng(0)
    lengths = {"line_a": 12, "line_b": 20}
    for name, n in lengths.items():
        np.savez(results / f"{name}.npz", fps=np.float64(30.0),
                 exp=rng.uniform(0, 0.5, (n, len(OPEN_HEAD_CHANNELS))).astype(np.float32),
                 jaw=np.column_stack([rng.uniform(0, 0.2, n), np.zeros((n, 2))]).astype(
                     np.float32),
                 exp_names=np.array(OPEN_HEAD_CHANNELS), model_id=np.array("test"),
                 head_id=np.array("open_head_v1"))
    (results / "line_broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "glb"
    cmd = [sys.executable, "-m", "emote.emote_blender.batch_job", str(results), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(DEVPATH))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=300, env=env)
    assert proc.returncode == 3, proc.stderr[-3000:]  # done, one line failed
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["exported"], summary["failed"]) == (2, 1)
    assert "line_broken" in proc.stderr
    for name, n in lengths.items():
        gltf = glb_json(out / f"{name}.glb")
        anim = gltf["animations"]
        assert len(anim) == 1  # only this line's take, not the earlier ones
        weights = [c for c in anim[0]["channels"] if c["target"]["path"] == "weights"]
        inp = anim[0]["samplers"][weights[0]["sampler"]]["input"]
        assert gltf["accessors"][inp]["count"] == n
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=300, env=env)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["skipped"], summary["exported"], summary["failed"]) == (2, 0, 1)
