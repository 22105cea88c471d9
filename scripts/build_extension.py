"""Build the extension zips into dist/ (what `./run build-extension` calls).

    ./run build-extension                          dist/emote-<v>.zip: generic, 'Set up runtime'
    ./run build-extension --platforms linux-x64    also dist/emote-<v>-linux_x64.zip with the
                                                   runtime's wheels (CPU torch ...): no download
                                                   after install
    --platforms linux-x64,windows-x64,macos-arm64  one bundled zip per platform

The bundled zips carry the pinned `model_runtime/requirements.txt` and their dependencies as
wheels for Python 3.11 (Blender 4.2-5.0), downloaded once into .cache/wheels/<platform>/ by
`pip download --platform ... --only-binary=:all:`. The sources are staged into build/ext-stage/
with a manifest that gains `platforms` and `wheels`, then Blender's own builder
(`blender_ext.py build --split-platforms`) writes one zip per platform with only its wheels.
Linux x86_64 must get the CPU torch wheel (PyPI's Linux torch is the CUDA build): this machine's
pip finds it locally; elsewhere pass --torch-index https://download.pytorch.org/whl/cpu.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"  # Blender 4.2 LTS to 5.0 all embed Python 3.11
# Blender platform name -> pip --platform tags (newest first is not needed; pip takes any listed)
PIP_PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                  "linux_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
    "macos-x64": ["macosx_14_0_x86_64", "macosx_12_0_x86_64", "macosx_10_15_x86_64",
                  "macosx_10_9_x86_64"],
    "linux-arm64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64",
                    "manylinux2014_aarch64"],
    "windows-arm64": ["win_arm64"],
}


def blender_ext_script() -> Path:
    """Blender's extension builder, from the bpy wheel in this environment."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the bpy wheel is needed to build the extension (./run setup)")
    for loc in spec.submodule_search_locations:
        hits = sorted(glob.glob(os.path.join(
            loc, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
        if hits:
            return Path(hits[-1])
    raise SystemExit("error: blender_ext.py not found in the bpy wheel")


def manifest_with_wheels(text: str, platforms: list[str], wheels: list[str]) -> str:
    """The manifest text with top-level `platforms` and `wheels` (before the first table)."""
    data = tomllib.loads(text)
    if "platforms" in data or "wheels" in data:
        raise ValueError("the source manifest must not set platforms or wheels itself")
    lines = text.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
    add = ("# Added by scripts/build_extension.py for the bundled-runtime zips.\n"
           f"platforms = [{', '.join(json.dumps(p) for p in platforms)}]\n"
           "wheels = [\n" + "".join(f"  {json.dumps(w)},\n" for w in wheels) + "]\n\n")
    out = "".join(lines[:at]) + add + "".join(lines[at:])
    tomllib.loads(out)  # still valid TOML
    return out


def source_files(root: Path) -> list[Path]:
    """The checkout's files (tracked and new, not ignored); the manifest's excludes apply later."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard",
                              "-z"], check=True, capture_output=True).stdout
        return [root / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in root.rglob("*") if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(root).parts)]


# Environment markers of each target (pip evaluates markers for the machine it runs on, so a
# plain `pip download --platform win_amd64 torch` would follow torch's Linux-only CUDA deps).
TARGET_MARKERS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
    "macos": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
}
MACHINE_MARKERS = {"linux-x64": "x86_64", "linux-arm64": "aarch64", "windows-x64": "AMD64",
                   "windows-arm64": "ARM64", "macos-arm64": "arm64", "macos-x64": "x86_64"}


def marker_env(platform: str) -> dict:
    env = {"python_version": PYTHON_VERSION, "python_full_version": PYTHON_VERSION + ".9",
           "implementation_name": "cpython", "implementation_version": PYTHON_VERSION + ".9",
           "platform_python_implementation": "CPython", "platform_release": "",
           "platform_version": "", "platform_machine": MACHINE_MARKERS[platform], "extra": ""}
    env.update(TARGET_MARKERS[platform.split("-")[0]])
    return env


def _wheel_requires(wheel: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode("utf-8", "replace")
    return [ln.split(":", 1)[1].strip() for ln in text.splitlines()
            if ln.startswith("Requires-Dist:")]


def _best_wheel(cache: Path, req) -> Path | None:
    from packaging.utils import canonicalize_name, parse_wheel_filename

    best = None
    for w in cache.glob("*.whl"):
        name, version, _build, _tags = parse_wheel_filename(w.name)
        if canonicalize_name(name) == canonicalize_name(req.name) and \
                req.specifier.contains(version, prereleases=True):
            if best is None or version > best[0]:
                best = (version, w)
    return best[1] if best else None


def bundled_requirements(root: Path = ROOT) -> list[str]:
    """The pins a bundled zip carries: the runtime's required ones (runtime_setup), so not those
    marked `# optional` (matplotlib: only the command-line main job's curve plot uses it, never
    the panel, and it warns and skips the plot without it; it would add about 24 MiB a zip)."""
    devpath = str(ROOT / "scripts" / "devpath")  # this checkout as the package emote
    if devpath not in sys.path:
        sys.path.insert(0, devpath)
    from emote.emote_blender.runtime_setup import required_requirements

    return required_requirements(root)


def download_wheels(platform: str, cache: Path, requirements: Path,
                    torch_index: str | None = None) -> list[Path]:
    """The runtime's wheels and their dependencies for one platform, into `cache`.

    Resolved level by level with `pip download --no-deps` and each wheel's own Requires-Dist,
    whose markers are evaluated for the target platform (not for this machine)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    if platform not in PIP_PLATFORMS:
        raise SystemExit(f"error: unknown platform {platform}; known: {', '.join(PIP_PLATFORMS)}")
    cache.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
            "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311",
            "--abi", "abi3", "--abi", "none", "-d", str(cache)]
    for tag in PIP_PLATFORMS[platform]:
        base += ["--platform", tag]
    if torch_index and platform == "linux-x64":
        base += ["--extra-index-url", torch_index]
    env = marker_env(platform)
    todo = [Requirement(ln) for ln in bundled_requirements(requirements.parents[1])]
    chosen: dict[str, Path] = {}
    print(f"[build] wheels for {platform} -> {cache}", file=sys.stderr)
    while todo:
        proc = subprocess.run(base + [str(r) for r in todo], text=True, capture_output=True)
        if proc.returncode:
            log = proc.stdout + proc.stderr
            sys.stderr.write(log[-3000:])
            missing = sorted({r.name for r in todo if re.search(
                rf"(?i)(no matching distribution[^\n]*\b{re.escape(r.name)}\b|"
                rf"no matching distributions available[^\n]*\n\s*{re.escape(r.name)}\b)", log)})
            if missing:
                raise SystemExit(f"error: the package index has no {', '.join(missing)} wheel "
                                 f"for {platform} and Python {PYTHON_VERSION} (pins in "
                                 f"{requirements.name}); build the other platforms without it")
            raise SystemExit(f"error: pip could not download the {platform} wheels (see above)")
        nxt = []
        for req in todo:
            wheel = _best_wheel(cache, req)
            if wheel is None:
                raise SystemExit(f"error: pip saved no wheel for {req} ({platform})")
            chosen[canonicalize_name(req.name)] = wheel
            for dep in map(Requirement, _wheel_requires(wheel)):
                if dep.marker is not None and not dep.marker.evaluate(env):
                    continue
                key = canonicalize_name(dep.name)
                if key not in chosen and all(canonicalize_name(r.name) != key for r in nxt):
                    dep.marker, dep.extras = None, set()
                    nxt.append(dep)
        todo = nxt
    wheels = sorted(chosen.values())
    if not any(w.name.startswith("torch-") for w in wheels):
        raise SystemExit(f"error: no torch wheel for {platform} in {cache}")
    if any(w.name.startswith(("nvidia", "cuda")) for w in wheels):
        raise SystemExit(f"error: pip chose a CUDA torch for {platform}; for linux-x64 pass "
                         "--torch-index https://download.pytorch.org/whl/cpu")
    return wheels


def stage(root: Path, stage_dir: Path, wheels_by_platform: dict[str, list[Path]]) -> Path:
    """Copy the sources and wheels into `stage_dir` with the manifest that lists them."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    for src in source_files(root):
        rel = src.relative_to(root)
        if rel.parts[0] in ("dist", "build", "wheels") or not src.is_file():
            continue
        dst = stage_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    (stage_dir / "wheels").mkdir(exist_ok=True)
    names: list[str] = []
    for wheels in wheels_by_platform.values():
        for w in wheels:
            dst = stage_dir / "wheels" / w.name
            if dst.exists():
                continue  # a pure-Python wheel that several platforms share
            if _same_fs(w, stage_dir):
                os.link(w, dst)  # hundreds of MB: no copy when a hard link will do
            else:
                shutil.copy2(w, dst)
            names.append(f"./wheels/{w.name}")
    manifest = stage_dir / "blender_manifest.toml"
    manifest.write_text(manifest_with_wheels(manifest.read_text("utf-8"),
                                             list(wheels_by_platform), sorted(names)), "utf-8")
    return stage_dir


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def blender_build(source: Path, out_dir: Path, split: bool) -> list[Path]:
    before = set(out_dir.glob("*.zip")) if out_dir.exists() else set()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(blender_ext_script()), "build", "--source-dir", str(source),
           "--output-dir", str(out_dir)]
    if split:
        cmd.append("--split-platforms")
    proc = subprocess.run(cmd, text=True, capture_output=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("error: blender_ext.py build failed (see above)")
    built = [out_dir / ln.split("building:", 1)[1].strip()
             for ln in proc.stdout.splitlines() if "building:" in ln]
    return built or sorted(set(out_dir.glob("*.zip")) - before)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platforms", default="",
                    help="comma-separated Blender platforms for bundled zips, e.g. linux-x64,"
                         "windows-x64,macos-arm64 (default: only the generic zip)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wheels")
    ap.add_argument("--wheel-dir", type=Path, default=None,
                    help="take each platform's wheels from WHEEL_DIR/<platform>/ instead of "
                         "downloading them")
    ap.add_argument("--torch-index", default=None,
                    help="extra index for the Linux CPU torch wheel")
    ap.add_argument("--stage", type=Path, default=ROOT / "build" / "ext-stage",
                    help="staging folder for the bundled zips' sources and wheels")
    ap.add_argument("--no-generic", action="store_true", help="skip the generic zip")
    args = ap.parse_args(argv)

    zips: list[Path] = []
    if not args.no_generic:
        zips += blender_build(ROOT, args.out, split=False)
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    if platforms:
        reqs = ROOT / "model_runtime" / "requirements.txt"
        wheels: dict[str, list[Path]] = {}
        for plat in platforms:
            if args.wheel_dir is not None:
                wheels[plat] = sorted((args.wheel_dir / plat).glob("*.whl"))
                if not wheels[plat]:
                    raise SystemExit(f"error: no wheels in {args.wheel_dir / plat}")
            else:
                wheels[plat] = download_wheels(plat, args.cache / plat, reqs, args.torch_index)
        staged = stage(ROOT, args.stage, wheels)
        zips += blender_build(staged, args.out, split=True)
    for z in zips:
        print(f"{z}\t{z.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
