"""What the extension zips hold: the generic zip, and the per-platform zips with wheels.

Built with Blender's own builder (blender_ext.py from the bpy wheel) exactly as
`./run build-extension` builds them; the bundled zips here use tiny stand-in wheels, so nothing
is downloaded (the real wheels are proven by scripts/prove_bundled_offline.py).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ("assets/dialogue/line_01.wav", "assets/dialogue/line_01.txt")


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_extension",
                                                  ROOT / "scripts" / "build_extension.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load_build_script()
needs_builder = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                   reason="Blender's extension builder comes with the bpy wheel")


@pytest.fixture(scope="module")
def generic_zip(tmp_path_factory) -> Path:
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("Blender's extension builder comes with the bpy wheel")
    out = tmp_path_factory.mktemp("dist")
    (zip_path,) = build.blender_build(ROOT, out, split=False)
    return zip_path


def test_generic_zip_ships_runtime_and_sample_but_no_dev_code(generic_zip):
    names = zipfile.ZipFile(generic_zip).namelist()
    for must in ("__init__.py", "blender_manifest.toml", "model_runtime/requirements.txt",
                 "model_runtime/default_model/model.safetensors",
                 "model_runtime/heads/open_head.npz", "emote_blender/runtime_setup.py", *SAMPLE):
        assert must in names, must
    for banned in ("model_runtime/training/", "tests/", "bench/", "scripts/", "docs/",
                   ".cache/", "run", "pyproject.toml", "requirements-dev.txt", "wheels/"):
        assert not any(n == banned or n.startswith(banned) for n in names), banned
    manifest = tomllib.loads(zipfile.ZipFile(generic_zip).read("blender_manifest.toml").decode())
    assert "wheels" not in manifest and "platforms" not in manifest


def test_shipped_code_imports_its_parts_relatively(generic_zip):
    """In Blender the zip is the package bl_ext.<repo>.emote: no file may import addon_ui,
    emote_blender or model_runtime as a top-level name (issue 18 part 5), but for the one marked
    `# top-level on purpose` (the set-up driver's own process, tests/test_namespace.py)."""
    absolute = []
    with zipfile.ZipFile(generic_zip) as z:
        sources = [n for n in z.namelist() if n.endswith(".py")]
        assert "emote_blender/generate.py" in sources
        for name in sources:
            text = z.read(name).decode("utf-8")
            lines = text.splitlines()
            for node in ast.walk(ast.parse(text, name)):
                mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module] if isinstance(node, ast.ImportFrom) and not node.level
                        else [])
                absolute += [f"{name}:{node.lineno} {m}" for m in mods
                             if m.split(".")[0] in ("addon_ui", "emote_blender", "model_runtime")
                             and "# top-level on purpose" not in lines[node.lineno - 1]]
    assert absolute == []


def test_shipped_code_never_imports_training(generic_zip, tmp_path):
    """Generate from the unpacked generic zip alone (no training package there) works."""
    zipfile.ZipFile(generic_zip).extractall(tmp_path)
    for py in tmp_path.rglob("*.py"):
        text = py.read_text("utf-8")
        assert not re.search(r"model_runtime\.training|from \.+training\b", text), py
    code = ("import sys, model_runtime, model_runtime.cli as cli\n"
            "assert model_runtime.__file__.startswith(sys.argv[1]), model_runtime.__file__\n"
            "sys.exit(cli.main(['generate', sys.argv[2], '--emotion', 'happy', '-o', "
            "sys.argv[3]]))\n")
    out = tmp_path / "line.npz"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path),
                           str(tmp_path / SAMPLE[0]), str(out)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file()


def test_manifest_gains_platforms_and_wheels_before_its_tables():
    text = (ROOT / "blender_manifest.toml").read_text("utf-8")
    out = build.manifest_with_wheels(text, ["linux-x64"], ["./wheels/a-1.0-py3-none-any.whl"])
    data = tomllib.loads(out)
    assert data["platforms"] == ["linux-x64"]
    assert data["wheels"] == ["./wheels/a-1.0-py3-none-any.whl"]
    assert data["build"]["paths_exclude_pattern"] == tomllib.loads(text)["build"][
        "paths_exclude_pattern"]
    with pytest.raises(ValueError, match="must not set"):
        build.manifest_with_wheels(out, ["linux-x64"], [])


def _fake_wheel(folder: Path, filename: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dist = "-".join(filename.split("-")[:2])
    with zipfile.ZipFile(folder / filename, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", "Metadata-Version: 2.1\n")
    return folder / filename


@needs_builder
def test_split_platforms_gives_each_zip_only_its_wheels(tmp_path):
    linux = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    win = "torch-2.13.0-cp311-cp311-win_amd64.whl"
    pure = "sympy-1.14.0-py3-none-any.whl"
    _fake_wheel(tmp_path / "w" / "linux-x64", linux)
    _fake_wheel(tmp_path / "w" / "linux-x64", pure)
    _fake_wheel(tmp_path / "w" / "windows-x64", win)
    _fake_wheel(tmp_path / "w" / "windows-x64", pure)
    rc = build.main(["--platforms", "linux-x64,windows-x64", "--wheel-dir", str(tmp_path / "w"),
                     "--out", str(tmp_path / "dist"), "--stage", str(tmp_path / "stage"),
                     "--no-generic"])
    assert rc == 0
    zips = {z.name: z for z in (tmp_path / "dist").glob("*.zip")}
    assert sorted(zips) == ["emote-0.1.0-linux_x64.zip", "emote-0.1.0-windows_x64.zip"]
    for plat, own, other in (("linux_x64", linux, win), ("windows_x64", win, linux)):
        z = zipfile.ZipFile(zips[f"emote-0.1.0-{plat}.zip"])
        names = z.namelist()
        assert f"wheels/{own}" in names and f"wheels/{pure}" in names
        assert f"wheels/{other}" not in names
        assert not any(n.startswith("model_runtime/training/") for n in names)
        assert SAMPLE[0] in names
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        assert manifest["build"]["generated"]["platforms"] == [plat.replace("_", "-")]
        assert sorted(manifest["build"]["generated"]["wheels"]) == sorted(
            [f"./wheels/{own}", f"./wheels/{pure}"])


def test_markers_are_evaluated_for_the_target_platform():
    from packaging.requirements import Requirement

    cuda = Requirement('cuda-bindings>=13; platform_system == "Linux"')
    assert cuda.marker.evaluate(build.marker_env("linux-x64"))
    assert not cuda.marker.evaluate(build.marker_env("windows-x64"))
    assert not cuda.marker.evaluate(build.marker_env("macos-arm64"))


def test_runtime_pins_are_the_versions_the_tests_run_on():
    from emote.emote_blender.runtime_setup import pinned_requirements

    pins = dict(r.split("==") for r in pinned_requirements())
    assert set(pins) == {"torch", "numpy", "scipy", "soundfile", "safetensors", "matplotlib"}
    for name, version in pins.items():
        installed = importlib.metadata.version(name)
        assert installed.split("+")[0] == version, (name, installed, version)


def test_bundled_zips_leave_out_the_optional_pins(tmp_path):
    """matplotlib only draws the command-line main job's plot: the zips carry every other pin."""
    reqs = ROOT / "model_runtime" / "requirements.txt"
    bundled = build.bundled_requirements(ROOT)
    pins = [ln.split("#")[0].strip() for ln in reqs.read_text("utf-8").splitlines()
            if ln.split("#")[0].strip()]
    assert [p for p in pins if p.startswith("matplotlib")], "the plot's pin is listed"
    assert not [p for p in bundled if p.startswith("matplotlib")]
    assert [p for p in pins if not p.startswith("matplotlib")] == bundled
    (tmp_path / "model_runtime").mkdir()
    (tmp_path / "model_runtime" / "requirements.txt").write_text(
        "torch==2.13.0\nfoo==1.0  # Optional: a plot\nbar==2.0  # needed\n")
    assert build.bundled_requirements(tmp_path) == ["torch==2.13.0", "bar==2.0"]
