"""Proof that a bundled-runtime zip generates right after install with no network.

    sudo .venv/bin/python scripts/prove_bundled_offline.py [dist/emote-0.1.0-linux_x64.zip]
    sudo .venv/bin/python scripts/prove_bundled_offline.py --setup-from https://pypi.org/simple \
        --expect-failure        # the generic zip's Set up runtime with no network fails cleanly
    .venv/bin/python scripts/prove_bundled_offline.py --allow-network \
        --setup-from https://pypi.org/simple   # ... and with network it sets up and generates

Makes a clean "Blender" interpreter: a venv with only what an official Blender's Python has
(the bpy 5.0 wheel of .venv, numpy, requests, zstandard; no torch, scipy, soundfile or
safetensors), then, inside a new network namespace (`unshare -n`: no network at all) and with a
throw-away BLENDER_USER_RESOURCES, installs the zip with Blender's own extension installer,
leaves 'Runtime Python' empty (no EMOTE_RUNTIME_PYTHON), adds the default head and the zip's
sample dialogue line, and runs Generate. Prints what it checked and the zip's size; exits 1 on
any failure. Needs root for `unshare -n` (pass --allow-network to run without it).

With --setup-from it proves the other path instead: the generic zip, 'Set up runtime' with pip
told to use only that index (no pip config, no extra index), the ready marker, then Generate.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What an official Blender's bundled Python has besides the stdlib (enough to import bpy).
BLENDER_PY_PACKAGES = ("bpy", "numpy", "numpy.libs", "requests", "urllib3", "idna", "certifi",
                       "charset_normalizer", "zstandard")

INNER = r'''
import importlib.util, json, os, socket, subprocess, sys, time
from pathlib import Path

zip_path, mode = sys.argv[1], sys.argv[2]
assert "EMOTE_RUNTIME_PYTHON" not in os.environ
for mod in ("torch", "scipy", "soundfile", "safetensors"):
    assert importlib.util.find_spec(mod) is None, f"{mod} must not be in the clean interpreter"
print("clean interpreter:", sys.executable, "(no torch, scipy, soundfile, safetensors)")
try:
    socket.create_connection(("pypi.org", 443), timeout=3).close()
    print("network: REACHABLE")
except OSError as exc:
    print("network: blocked (" + type(exc).__name__ + ": " + str(exc) + ")")

import bpy
print("Blender", bpy.app.version_string)
t0 = time.monotonic()
bpy.ops.wm.read_factory_settings(use_empty=True)
res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                               enable_on_install=True)
module = "bl_ext.user_default.emote"
assert res == {"FINISHED"} and module in bpy.context.preferences.addons, res
print(f"installed and enabled in {time.monotonic() - t0:.1f} s")

prefs_mod = sys.modules[module + ".addon_ui.preferences"]
from bl_ext.user_default.emote.emote_blender import generate, runtime_setup
from bl_ext.user_default.emote.emote_blender.runtime_env import runtime_env
if mode == "setup":
    assert prefs_mod.runtime_python(bpy.context) == ""
    print("before set-up:", prefs_mod.runtime_status(bpy.context))
    bpy.context.preferences.system.use_online_access = True
    t0 = time.monotonic()
    msg = ""
    try:
        res = bpy.ops.emote.setup_runtime()
    except RuntimeError as exc:  # bpy.ops raises when the operator reports an ERROR
        res, msg = {"CANCELLED"}, str(exc)
    print(f"Set up runtime: {res} in {time.monotonic() - t0:.0f} s")
    site = prefs_mod.setup_folder()
    if "--expect-failure" in sys.argv:
        print("operator report:", msg.strip())
        print("runtime status:", prefs_mod.runtime_status(bpy.context))
        left = sorted(p.name for p in site.parent.iterdir())
        print("left in the extension's user folder:", left)
        assert res == {"CANCELLED"} and "no network?" in msg and "exit code" not in msg
        assert runtime_setup.setup_state(site) == "missing" and not site.exists()
        assert not runtime_setup.partial_folder(site).exists()
        assert prefs_mod.runtime_python(bpy.context) == ""
        print("PROOF OK (set-up failed as it should, nothing looks ready)")
        sys.exit(0)
    assert res == {"FINISHED"}, msg
    print("ready marker:", json.loads((site / runtime_setup.READY_MARKER).read_text()))
    assert not runtime_setup.partial_folder(site).exists()
else:
    site = runtime_setup.wheel_site_packages(prefs_mod.extensions_dir())
py = prefs_mod.runtime_python(bpy.context)
assert py == sys.executable, (py, sys.executable)
assert runtime_setup.site_dirs_for(py) == [str(site)], runtime_setup.site_dirs_for(py)
print("runtime python:", py)
print("runtime status:", prefs_mod.runtime_status(bpy.context))
probe = subprocess.run([py, "-c", "import torch, numpy, scipy, soundfile, safetensors; "
                        "print(torch.__version__, torch.__file__)"], capture_output=True,
                       text=True, env=runtime_env(py))
assert probe.returncode == 0, probe.stderr
assert probe.stdout.split()[1].startswith(str(site)), probe.stdout
print("runtime torch:", probe.stdout.strip())

scene = bpy.context.scene
scene.render.fps = 30
assert bpy.ops.emote.add_default_head() == {"FINISHED"}
ext = Path(sys.modules[module].__file__).parent
line = ext / "assets" / "dialogue" / "line_01.wav"
assert line.is_file(), line
ed = scene.sequence_editor_create()
from bl_ext.user_default.emote.emote_blender import blender_compat
s = scene.emote
c = s.head.emote  # the head's own settings
c.emotion = "HAPPY"
s.head.keyframe_insert("emote.emotion", frame=1)
try:
    strip = blender_compat.new_sound_strip(ed, "line_01", str(line), 1, 1)
except RuntimeError as exc:  # the bpy 4.2 wheel is built without Audaspace: no sound strips
    if "Audaspace" not in str(exc):
        raise
    strip = None
t0 = time.monotonic()
if strip is not None:
    res = bpy.ops.emote.generate()
    assert res == {"FINISHED"}, s.last_error
else:  # the same Generate, through the module the operator calls, with a stand-in strip
    import wave

    class Strip:
        name, type, select, frame_start, frame_offset_start, frame_offset_end = (
            "line_01", "SOUND", True, 1, 0, 0)
        sound_offset = 0.0
        sound = bpy.data.sounds.load(str(line))
        with wave.open(str(line)) as w:
            duration = int(round(w.getnframes() / w.getframerate() * 30))
        frame_final_start = 1
        frame_final_end = 1 + duration

    strip = Strip()
    generate.generate_sync(scene, s.head, strip, "default", c.style, py)
    res = "generate_sync (no Audaspace in this bpy wheel)"
dt = time.monotonic() - t0
head = s.head
take = head.emote_takes[-1]
n = sum(len(fc.keyframe_points) for fc in blender_compat.action_fcurves(take.action))
moving = 0
for fc in blender_compat.action_fcurves(take.action):
    vals = [k.co[1] for k in fc.keyframe_points]
    moving += (max(vals) - min(vals)) > 1e-3
print(f"Generate: {res} in {dt:.1f} s (cold): take {take.name!r}, {n} keys, "
      f"{moving} moving curves, {strip.frame_final_end - strip.frame_final_start} frames")
assert moving > 5
assert "torch" not in sys.modules, "Blender's process imported torch"
print("Blender's own process never imported torch")
bpy.ops.preferences.addon_disable(module=module)
print("PROOF OK")
'''


def clean_interpreter(where: Path, with_pip: bool = False, source: Path | None = None) -> Path:
    """A venv whose site-packages holds only Blender-Python-like packages (links into .venv);
    with pip (as Blender's Python has) for the set-up proof."""
    subprocess.run([sys.executable, "-m", "venv", str(where)]
                   + ([] if with_pip else ["--without-pip"]), check=True)
    site = Path(glob.glob(str(where / "lib" / "python3*" / "site-packages"))[0])
    src = Path(glob.glob(str((source or ROOT / ".venv").resolve() / "lib" / "python3*" /
                             "site-packages"))[0])
    for name in BLENDER_PY_PACKAGES:
        if (src / name).exists():
            (site / name).symlink_to(src / name)
    return where / "bin" / "python"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("zip", nargs="?", default=None)
    ap.add_argument("--allow-network", action="store_true")
    ap.add_argument("--setup-from", metavar="INDEX", default=None,
                    help="instead: install the GENERIC zip and press 'Set up runtime' with pip "
                         "pointed only at INDEX (PyPI or a mirror; file:// works offline), then "
                         "Generate with what it installed")
    ap.add_argument("--find-links", default=None, help="with --setup-from: a wheel folder too")
    ap.add_argument("--expect-failure", action="store_true",
                    help="with --setup-from under no network: prove the set-up fails cleanly")
    ap.add_argument("--blender-venv", type=Path, default=ROOT / ".venv",
                    help="the venv whose bpy wheel plays Blender (.venv: 5.0, .venv42: 4.2)")
    args = ap.parse_args()
    pattern = "emote-*[0-9].zip" if args.setup_from else "*-linux_x64.zip"
    zips = [args.zip] if args.zip else sorted(glob.glob(str(ROOT / "dist" / pattern)))
    if not zips:
        print(f"error: no dist/{pattern}; run ./run build-extension --platforms linux-x64")
        return 1
    zip_path = Path(zips[-1]).resolve()
    print(f"zip: {zip_path} ({zip_path.stat().st_size / 2**20:.1f} MiB)")
    tmp = Path(tempfile.mkdtemp(prefix="emote_offline_"))
    try:
        py = clean_interpreter(tmp / "blender_py", with_pip=bool(args.setup_from),
                               source=args.blender_venv)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PIP_", "EMOTE_", "PYTHON", "VIRTUAL_ENV"))}
        env["BLENDER_USER_RESOURCES"] = str(tmp / "blender_user")
        env["HOME"] = str(tmp / "home")
        if args.setup_from:
            env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=args.setup_from)
            if args.find_links:
                env["PIP_FIND_LINKS"] = args.find_links
        cmd = [str(py), "-c", INNER, str(zip_path), "setup" if args.setup_from else "bundled"]
        if args.expect_failure:
            cmd.append("--expect-failure")
        if not args.allow_network:
            cmd = ["unshare", "-n", "--"] + cmd
        t0 = time.monotonic()
        rc = subprocess.call(cmd, env=env, cwd=str(tmp))
        print(f"wall time {time.monotonic() - t0:.1f} s, exit code {rc}")
        return 0 if rc == 0 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
