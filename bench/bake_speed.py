"""Time to bake one take: 60 s at 30 fps, 103 expression channels plus the jaw bone.

Runs headless with the bpy wheel: `.venv/bin/python bench/bake_speed.py` (target < 0.2 s).
Builds a small head with 103 shape keys and a jaw bone, then times bake.bake_take on a random
result (keyframes written in bulk), best of a few runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

import bpy  # noqa: E402

from emote.emote_blender import bake, heads  # noqa: E402
from emote.model_runtime.heads.head_model import HeadModel  # noqa: E402

SECONDS, FPS, CHANNELS = 60, 30, 103


def _register_take_props() -> None:
    """The take list normally comes with the add-on; register just that part."""
    from emote.addon_ui import properties

    properties.register()


def small_head(n_exp: int) -> HeadModel:
    rng = np.random.default_rng(0)
    ring = np.array([[np.cos(a), np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, 8, False)])
    v = np.concatenate([ring * 0.1, ring * 0.1 + (0, 0, 0.1)]).astype(np.float32)
    faces = np.array([[i, (i + 1) % 8, 8 + i] for i in range(8)], dtype=np.int32)
    return HeadModel(
        head_id="bench", v_template=v, faces=faces,
        exp_names=[f"exp{i:03d}" for i in range(n_exp)],
        exp_dirs=rng.normal(0, 1e-3, (16, 3, n_exp)).astype(np.float32),
        joint_names=["root", "neck", "jaw"], joints=np.zeros((3, 3), np.float32),
        parents=np.array([-1, 0, 1]), lbs_weights=np.tile([0.5, 0.25, 0.25], (16, 1)).astype(
            np.float32), landmark_names=["lip_upper_inner", "lip_lower_inner",
                                         "mouth_corner_left", "mouth_corner_right"],
        landmark_vertices=np.arange(4))


def main() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _register_take_props()
    head = small_head(CHANNELS)
    obj, _rig = heads.build_head(head)
    T = SECONDS * FPS
    rng = np.random.default_rng(1)
    result = {"exp": rng.normal(0, 1, (T, CHANNELS)).astype(np.float32),
              "jaw": rng.normal(0, 0.1, (T, 3)).astype(np.float32), "exp_names": head.exp_names,
              "fps": float(FPS)}  # a RESULT.npz always says its frame rate
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        bake.bake_take(obj, result, 1, f"bench {i}")
        times.append(time.perf_counter() - t0)
    keys = T * (CHANNELS + 4)
    print(f"bpy {bpy.app.version_string}: bake {SECONDS} s at {FPS} fps x {CHANNELS} channels "
          f"+ jaw ({keys} keys): best {min(times):.3f} s, median {np.median(times):.3f} s")


if __name__ == "__main__":
    main()
