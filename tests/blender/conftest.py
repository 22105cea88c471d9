"""Blender test fixtures: the extension built and installed into a throw-away user folder.

The runtime (torch) runs in $EMOTE_RUNTIME_PYTHON, default this interpreter; under the bpy 4.2
venv point it at the main venv. Test data that needs scipy/torch is made by that interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVPATH = ROOT / "scripts" / "devpath"  # on PYTHONPATH: this checkout as the package `emote`
if "EMOTE_TEST_USER_RESOURCES" not in os.environ:  # once, even if this module is imported twice
    os.environ["EMOTE_TEST_USER_RESOURCES"] = tempfile.mkdtemp(prefix="emote_blender_user_")
# Set before bpy starts, so nothing lands in the real ~/.config/blender.
os.environ["BLENDER_USER_RESOURCES"] = os.environ["EMOTE_TEST_USER_RESOURCES"]
os.environ.setdefault("EMOTE_RUNTIME_PYTHON", sys.executable)
RUNTIME_PY = os.environ["EMOTE_RUNTIME_PYTHON"]
MODULE = "bl_ext.user_default.emote"

bpy = pytest.importorskip("bpy", reason="Blender tests need the bpy wheel (pip install bpy)")


def blender_ext_script() -> Path:
    scripts = Path(bpy.utils.system_resource("SCRIPTS"))
    return scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def run_runtime_py(code: str, *args: str) -> str:
    """Run Python code in the runtime interpreter (which has torch and scipy)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT), str(DEVPATH))))
    proc = subprocess.run([RUNTIME_PY, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ext")
    proc = subprocess.run([sys.executable, str(blender_ext_script()), "build", "--source-dir",
                           str(ROOT), "--output-dir", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(out.glob("*.zip"))


@pytest.fixture(scope="session")
def installed(extension_zip):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.extensions.package_install_files(filepath=str(extension_zip),
                                                   repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}
    assert MODULE in bpy.context.preferences.addons
    yield MODULE
    bpy.ops.preferences.addon_disable(module=MODULE)
    bpy.ops.wm.read_factory_settings(use_empty=True)  # free imported data before bpy exits


FPS, FPS_BASE = 30, 1.001  # the test scenes' frame rate: NTSC's 29.97, a fractional one


def reset_scene():
    """Empty the file and enable the extension; the scene runs at FPS / FPS_BASE."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if MODULE not in bpy.context.preferences.addons:
        bpy.ops.preferences.addon_enable(module=MODULE)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, FPS_BASE
    return scene


@pytest.fixture
def fresh(installed):
    """An empty file with the extension enabled."""
    return reset_scene()


@pytest.fixture(scope="session")
def flame_pkl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    run_runtime_py("import sys; from tests.helpers.synthetic_flame import write_synthetic_flame;"
                   " write_synthetic_flame(sys.argv[1], n_exp=20)", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, flame_pkl) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    run_runtime_py(
        "import sys, torch; torch.manual_seed(0)\n"
        "from model_runtime.heads.flame_pickle import load_flame\n"
        "from model_runtime.checkpoints import tiny_config, build_model, save_checkpoint\n"
        "head = load_flame(sys.argv[1])\n"
        "cfg = tiny_config(head.exp_names, identities=('default', 'calm'))\n"
        "save_checkpoint(build_model(cfg), cfg, sys.argv[2])\n", str(flame_pkl), str(folder))
    return folder


def write_wav(path: Path, seconds: float, sr: int = 16000, seed: int = 0) -> Path:
    """A speech-like test signal: a buzzy tone with syllable-rate loudness and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    x = env * (0.4 * np.sign(np.sin(2 * np.pi * 140 * t)) + 0.1 * rng.standard_normal(t.size))
    pcm = np.clip(x * 0.5 * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def wav(tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "line01.wav", 2.0)


class StandInStrip:
    """A sound strip's timing attributes, for bpy wheels built without Audaspace (4.2 on PyPI),
    which cannot create sound strips. It plays a real Sound datablock."""

    type = "SOUND"
    select = True

    def __init__(self, name: str, sound, frame_start: int, duration_frames: int):
        self.name, self.sound, self.frame_start = name, sound, frame_start
        self.duration, self.frame_offset_start, self.frame_offset_end = duration_frames, 0, 0
        self.sound_offset = 0.0

    @property
    def frame_final_start(self):
        return self.frame_start + self.frame_offset_start

    @property
    def frame_final_end(self):
        return self.frame_start + self.duration - self.frame_offset_end


def add_sound_strip(scene, name: str, wav: Path, frame_start: int, monkeypatch=None):
    """A real sound strip, or on an Audaspace-less wheel a StandInStrip the panel will use."""
    from bl_ext.user_default.emote.emote_blender import blender_compat

    ed = scene.sequence_editor_create()
    try:
        return blender_compat.new_sound_strip(ed, name, str(wav), 1, frame_start)
    except RuntimeError as exc:
        if "Audaspace" not in str(exc):
            raise
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    fps = scene.render.fps / scene.render.fps_base
    strip = StandInStrip(name, bpy.data.sounds.load(str(wav)), frame_start,
                         int(round(seconds * fps)))
    if monkeypatch is not None:
        ops = sys.modules[MODULE + ".addon_ui.operators"]
        monkeypatch.setattr(ops, "chosen_strip", lambda _context: strip)
    return strip


_EXIT = {"status": 0}


def pytest_sessionfinish(session, exitstatus):
    _EXIT["status"] = int(exitstatus)


def pytest_unconfigure(config):
    """The bpy 4.2 wheel segfaults at interpreter exit once the glTF add-on has run (Blender's
    bug, not ours); end the process with pytest's own status before that teardown."""
    if bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
