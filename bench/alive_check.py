"""Issue 16 part 2's acceptance figures: blinks, gaze shifts and head rotation on 60 s of real
speech, from `python -m model_runtime generate` and from the same result baked in Blender.

    EMOTE_SHARED_DIR=/work/shared .venv/bin/python bench/alive_check.py --asterisk DIR
    .venv/bin/python bench/alive_check.py      # assets/dialogue/line_01.wav repeated instead

Asterisk prompts (Debian asterisk-core-sounds-en-wav, unpacked anywhere with `apt-get download
asterisk-core-sounds-en-wav && dpkg-deb -x asterisk-core-sounds-en-wav_*.deb ast`; DIR is then
ast/usr/share/asterisk/sounds/en_US_f_Allison) are taken in name order, the dev and reserved prompts of the shared lists left out, until 60 s are filled.
The baked figures need bpy in this interpreter; they are read back from the take's F-curves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "devpath"))  # this checkout as the package `emote`

from emote.model_runtime import alive

SR = 16000


def speech_60s(asterisk: str | None, out: Path) -> str:
    """Write 60 s of speech to `out`; return a description of what it is."""
    if asterisk is None:
        x, _ = sf.read(ROOT / "assets/dialogue/line_01.wav", dtype="float32")
        sf.write(out, np.tile(x, 10)[:60 * SR], SR, subtype="PCM_16")
        return "assets/dialogue/line_01.wav repeated"
    from scipy.signal import resample_poly

    from emote.model_runtime.training.align import excluded_clip_keys

    banned = excluded_clip_keys()
    parts, used = [], []
    for p in sorted(Path(asterisk).glob("*.wav")):
        if p.stem in banned:
            continue
        x, sr = sf.read(p, dtype="float32")
        parts.append(resample_poly(x, SR, sr).astype(np.float32) if sr != SR else x)
        used.append(p.stem)
        if sum(len(a) for a in parts) >= 60 * SR:
            break
    sf.write(out, np.concatenate(parts)[:60 * SR], SR, subtype="PCM_16")
    return f"{len(used)} Asterisk prompts ({used[0]} .. {used[-1]})"


def figures(exp_l: np.ndarray, gaze_deg_moves: int, head_deg: np.ndarray, seconds: float
            ) -> str:
    return (f"blinks {alive.count_blinks(exp_l) / (seconds / 60):.1f}/min, gaze shifts "
            f"{gaze_deg_moves / (seconds / 3):.2f} per 3 s, head max {head_deg.max():.2f} deg "
            f"(non-zero frames {np.mean(head_deg > 1e-4):.0%})")


def runtime_figures(npz: Path) -> tuple[str, dict]:
    with np.load(npz) as d:
        r = {k: d[k] for k in d.files}
    names = [str(n) for n in r["exp_names"]]
    fps, n = float(r["fps"]), r["exp"].shape[0]
    head_deg = np.degrees(np.linalg.norm(r["head"], axis=1))
    return figures(r["exp"][:, names.index("eyeBlink_L")], alive.count_gaze_shifts(
        r["gaze"], fps), head_deg, n / fps), r


def baked_figures(npz: Path, seconds: float) -> str:
    import bpy

    from emote import addon_ui
    from emote.emote_blender import bake, blender_compat, heads
    from emote.emote_blender.runtime_result import read_result
    from emote.model_runtime.heads.open_head import default_head_path

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_ui.register()
    obj, rig = heads.build_head(heads.load_head_file(default_head_path()))
    with np.load(npz) as d:
        n = d["exp"].shape[0]
    result = read_result(npz, n)
    take, _cmap = bake.bake_take(obj, result, 1, "check", strengths={})
    curves = {}
    for target, act in ((obj.data.shape_keys, take.action), (rig, take.rig_action)):
        for fc in blender_compat.action_fcurves(act, blender_compat.find_slot(act, target)):
            co = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            curves[(fc.data_path, fc.array_index)] = co[1::2]

    def quats(bone):
        return np.stack([curves[(f'pose.bones["{bone}"].rotation_quaternion', i)]
                         for i in range(4)], axis=1)

    fps = result["fps"]
    lag = int(round(0.2 * fps))
    q = quats("eye_left")
    step = np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(q[lag:] * q[:-lag], axis=1)), 0, 1)))
    moved = step > 2.0
    shifts = int(np.sum(moved[1:] & ~moved[:-1]) + moved[0])
    neck = quats("neck")
    head_deg = np.degrees(2 * np.arccos(np.clip(np.abs(neck[:, 0]), 0, 1)))
    out = figures(curves[('key_blocks["eyeBlink_L"].value', 0)], shifts, head_deg, seconds)
    addon_ui.unregister()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--asterisk", help="folder of Asterisk prompt .wav files")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alive_check_"))
    wav = tmp / "speech60.wav"
    print("speech:", speech_60s(args.asterisk, wav))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for label, extra in (("on", []), ("off", ["--no-blinks", "--no-gaze", "--no-head-motion"])):
        out = tmp / f"{label}.npz"
        subprocess.run([sys.executable, "-m", "model_runtime", "generate", str(wav), "-o",
                        str(out), "--progress", "none", "--seed", str(args.seed), *extra],
                       check=True, env=env, cwd=ROOT)
        text, r = runtime_figures(out)
        print(f"runtime {label}: {text}; gaze all zero: {not np.any(r['gaze'])}, "
              f"head all zero: {not np.any(r['head'])}")
        try:
            import bpy  # noqa: F401
        except ImportError:
            print("baked: skipped (no bpy in this interpreter)")
            continue
        print(f"baked   {label}: {baked_figures(out, 60.0)}")


if __name__ == "__main__":
    main()
