"""A real third-party ARKit head driven end to end (issue 17 part 6): the Face Cap head
(tests/data/third_party/facecap/NOTICE.md) imported with Blender's glTF importer, its shape keys
matched by name, a take generated onto it from each dev clip, lips measured on its evaluated mesh.

    python bench/eval_third_party_head.py [--model default|DIR] [--limit N] [--clear-animation]
                                          [--json OUT]

Needs bpy (this venv), the dev clips (EMOTE_SHARED_DIR, Debian's asterisk-core-sounds-en-wav)
and the head (fetched on first use: python -m tests.helpers.third_party_head).

Printed: how many of ARKit's 52 shapes the head's keys match (and which the model drives), then
the METRICS.md lip-sync figures pooled over the dev clips, measured on the Face Cap head's
evaluated mesh (Blender's depsgraph, the take as Generate baked it) and, for comparison, on the
open head from the same Generate results. Landmarks on the Face Cap head follow
`retarget.landmarks_from_arkit_shapes` (the rule the retargeting uses): the mouth corners are the
vertices mouthSmileLeft/Right move most; the inner lips the upper/lower pair, near the midline,
that mouthClose moves down/up by at least half its most and that lie closest together at rest.
The head is modelled larger than life, so its gaps in mm are scaled by (open head's rest mouth
width / its rest mouth width); closure recall and false closure rate do not depend on scale.
Last, issue 17 part 3 on this head: each run carried onto the synthetic FLAME head and from there
onto this head by the retargeting fit, and the lip gap correlation of the two.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers
sys.path.insert(0, str(ROOT / "scripts" / "devpath"))  # this checkout as the package `emote`

# The functions up to main() run in Blender 4.2-5.0 as the tests use them, where the installed
# extension's model_runtime has no training package: metrics and the dev set load in main().
LIP_MARKS = ("lip_upper_inner", "lip_lower_inner", "mouth_corner_left", "mouth_corner_right")


def import_head(path: str | Path):
    """Import the .glb into the current scene; the mesh with the most shape keys is the face."""
    import bpy

    before = set(bpy.data.objects)
    res = bpy.ops.import_scene.gltf(filepath=str(path))
    if res != {"FINISHED"}:
        raise RuntimeError(f"glTF import of {path} failed: {res}")
    meshes = [o for o in set(bpy.data.objects) - before
              if o.type == "MESH" and o.data.shape_keys is not None]
    if not meshes:
        raise RuntimeError(f"{path} holds no mesh with shape keys")
    return max(meshes, key=lambda o: len(o.data.shape_keys.key_blocks))


def arkit_matches(obj) -> tuple[dict[str, str], list[str], list[str]]:
    """({ARKit name: the head's shape key}, ARKit names no key matches, keys no convention names),
    by `channels.identify`, the matching Generate uses."""
    from emote.emote_blender import channels
    from emote.model_runtime.heads.arkit_channels import ARKIT_BLENDSHAPES

    found: dict[str, str] = {}
    unknown = []
    for kb in obj.data.shape_keys.key_blocks[1:]:
        role = channels.identify(kb.name)
        if role is None:
            unknown.append(kb.name)
        elif not role.preset and len(role.sources) == 1 and role.sources[0][0] in ARKIT_BLENDSHAPES:
            found.setdefault(role.sources[0][0], kb.name)
    return found, [n for n in ARKIT_BLENDSHAPES if n not in found], unknown


def lip_landmarks(obj) -> dict[str, int]:
    """Mouth landmark vertices of the head (module docstring: the rule)."""
    from emote.emote_blender import retargeting

    head = retargeting.head_model_of(obj)
    if head is None:
        raise RuntimeError(f"{obj.name}: no ARKit mouth shapes to read the lips off")
    return {n: int(head.landmark_vertices[head.landmark_names.index(n)]) for n in LIP_MARKS}


def clear_animation(obj) -> None:
    """Remove the head's shape-key animation (action and NLA) and set every key to 0."""
    key = obj.data.shape_keys
    key.animation_data_clear()
    for kb in key.key_blocks[1:]:
        kb.value = 0.0


def evaluated_points(scene, obj, vertices: list[int], frames) -> np.ndarray:
    """World positions (T, len(vertices), 3) of `vertices` on the evaluated mesh at `frames`."""
    out = np.zeros((len(frames), len(vertices), 3))
    for t, f in enumerate(frames):
        scene.frame_set(int(f))
        import bpy

        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = np.array(ev.matrix_world)
        co = np.array([tuple(ev.data.vertices[i].co) for i in vertices])
        out[t] = co @ mw[:3, :3].T + mw[:3, 3]
    return out


def life_size_mm(obj, marks: dict[str, int]) -> float:
    """mm per Blender unit that gives the head's rest mouth the open head's rest mouth width."""
    from emote.emote_blender import retargeting

    mw = np.array(obj.matrix_world)
    rest = {n: mw[:3, :3] @ np.array(obj.data.vertices[i].co) for n, i in marks.items()}
    width = float(np.linalg.norm(rest["mouth_corner_left"] - rest["mouth_corner_right"]))
    ark = retargeting._open_head()
    v = ark.v_template
    ark_w = float(np.linalg.norm(v[ark.landmark("mouth_corner_left")]
                                 - v[ark.landmark("mouth_corner_right")]))
    return 1000.0 * ark_w / width


def lip_signals_on_mesh(scene, obj, marks: dict[str, int], frames, mm_per_unit: float):
    """g(t), w(t) in (life-size) mm on the head's evaluated mesh."""
    p = evaluated_points(scene, obj, [marks[n] for n in LIP_MARKS], frames) * mm_per_unit
    g = np.linalg.norm(p[:, 0] - p[:, 1], axis=-1)
    w = np.linalg.norm(p[:, 2] - p[:, 3], axis=-1)
    return g, w


def flame_maps(obj, ark):
    """(synthetic FLAME head, open head -> FLAME map, FLAME -> `obj` map, `obj`'s head model,
    whether its mouthClose is capped at jawOpen) for the part 3 figure on this head."""
    from emote.emote_blender import mouth_close, retargeting
    from emote.model_runtime.heads import retarget
    from emote.model_runtime.heads.flame_pickle import load_flame
    from tests.helpers.synthetic_flame import write_synthetic_flame

    path = Path(tempfile.mkdtemp()) / "generic_model.pkl"
    write_synthetic_flame(path, n_exp=100)
    flame = load_flame(path, n_exp=100)
    head = retargeting.head_model_of(obj)
    # head_model_of leaves the skinning weights at zero (it serves the retargeting fit, which
    # reads only the shapes); evaluating it needs the mesh bound to the global joint.
    weights = np.zeros_like(head.lbs_weights)
    weights[:, 0] = 1.0
    head = dataclasses.replace(head, lbs_weights=weights)
    return (flame, retarget.fit_retarget(ark, flame), retarget.fit_retarget(flame, head), head,
            mouth_close.closes_through(head))


def flame_to_head_corr(exp, jaw, flame, a2f, f2c, head, cap: bool) -> float:
    """Lip gap correlation of a FLAME animation (the open-head one carried onto FLAME) and the
    same carried on to `head` by `f2c`, mouthClose capped at jawOpen when the bake caps it."""
    from emote.model_runtime.training import metrics

    f_exp, f_jaw = a2f.apply(exp, jaw)
    c_exp, c_jaw = f2c.apply(f_exp, f_jaw)
    if cap:
        names = list(f2c.target_names)
        close, jaw_open = names.index("mouthClose"), names.index("jawOpen")
        c_exp[:, close] = np.minimum(c_exp[:, close], c_exp[:, jaw_open])
    g_f = metrics.lip_signals(flame, f_exp, f_jaw)[0]
    g_c = metrics.lip_signals(head, c_exp, c_jaw)[0]
    return float(np.corrcoef(g_f, g_c)[0, 1])


def generate_onto(scene, obj, wav: str | Path, name: str, model: str, python: str,
                  work_dir: str, use_server: bool = True):
    """Generate from `wav` (a sound strip at frame 1) onto `obj` as the panel's Generate does;
    returns (take, channel map, result). The strip is removed again."""
    from emote.emote_blender import blender_compat, generate
    from emote.emote_blender.runtime_result import read_result

    ed = scene.sequence_editor_create()
    strip = blender_compat.new_sound_strip(ed, name, str(wav), 1, 1)
    try:
        take, cmap, job = generate.generate_sync(scene, obj, strip, model, "", python, work_dir,
                                                 use_server=use_server)
        frames = int(np.ceil(strip.frame_final_end - 1e-6)) - int(np.ceil(
            strip.frame_final_start - 1e-6))
        result = read_result(job.out_path, frames)
    finally:
        strips = getattr(ed, "strips", None)
        (ed.sequences if strips is None else strips).remove(strip)
    return take, cmap, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Face Cap head driven end to end on the dev clips")
    ap.add_argument("--model", default="default", help='"default" or a checkpoint folder')
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--head", default=None, help="a .glb (default: the Face Cap head)")
    ap.add_argument("--clear-animation", action="store_true",
                    help="delete the file's own take and zero its keys before generating (by "
                         "default the head is used as imported: the take's static key values at "
                         "frame 1 stay on the keys the model does not drive)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import bpy

    from bench.eval_lipsync import FPS, default_head, to_head_order
    from emote.emote_blender import main_job, runtime_client
    from emote.model_runtime.training import metrics, teacher
    from emote.model_runtime.training.align import ASTERISK_SOUNDS, dev_set
    from tests.helpers import third_party_head

    clips = dev_set()[:args.limit]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    main_job.register_extension()
    scene = bpy.context.scene
    main_job.set_fps(scene, FPS)
    obj = import_head(args.head or third_party_head.plain_glb())
    if args.clear_animation:
        clear_animation(obj)
    found, missing, unknown = arkit_matches(obj)
    marks = lip_landmarks(obj)
    mm = life_size_mm(obj, marks)
    python = os.environ.get("EMOTE_RUNTIME_PYTHON") or sys.executable
    ark = default_head()
    flame, a2f, f2c, cap_head, cap = flame_maps(obj, ark)
    corr_f2c: list[float] = []
    per_head, per_open = [], []
    driven: set[str] = set()
    try:
        with tempfile.TemporaryDirectory(prefix="emote_third_party_") as work:
            for c in clips:
                take, cmap, result = generate_onto(scene, obj, ASTERISK_SOUNDS / f"{c['id']}.wav",
                                                   c["id"].replace("/", "_"), args.model, python,
                                                   work)
                driven |= set(cmap.shape_keys.values()) | set(cmap.mixes)
                driven |= {cmap.jaw_open_key} - {None}
                n = result["exp"].shape[0]
                frames = take.first_frame + np.arange(n)
                g, w = lip_signals_on_mesh(scene, obj, marks, frames, mm)
                ref = teacher.reference_lip_gap(c["phones"], n, FPS)
                m = metrics.clip_metrics(g, w, c["phones"], FPS, ref_gap=ref)
                per_head.append({**m, "id": c["id"]})
                g0, w0 = metrics.lip_signals(ark, to_head_order(result["exp"],
                                                                list(result["exp_names"]), ark),
                                             result["jaw"])
                per_open.append({**metrics.clip_metrics(g0, w0, c["phones"], FPS, ref_gap=ref),
                                 "id": c["id"]})
                corr_f2c.append(flame_to_head_corr(
                    to_head_order(result["exp"], list(result["exp_names"]), ark),
                    result["jaw"], flame, a2f, f2c, cap_head, cap))
    finally:
        runtime_client.shutdown_server()
    print(f"head: {obj.name} from {args.head or third_party_head.PLAIN_NAME} "
          f"({len(obj.data.shape_keys.key_blocks) - 1} shape keys)")
    print(f"ARKit shapes matched by name: {len(found)}/52"
          + (f" (missing: {', '.join(missing)})" if missing else "")
          + (f"; keys left alone: {', '.join(unknown)}" if unknown else ""))
    print(f"keys the model drives: {len(driven)} (the others are shapes the model has no channel "
          f"for: {', '.join(sorted(set(found.values()) - driven))})")
    print(f"lip landmarks (vertex index): {marks}; life-size scale {mm:.4g} mm per unit")
    rows = {"face cap (mesh)": metrics.pool(per_head), "open head (same runs)": metrics.pool(per_open)}
    print(f"clips: dev ({len(clips)}), model: {args.model}, head "
          + ("animation cleared first" if args.clear_animation else "as imported"))
    print(metrics.format_table(rows, mm=True))
    print(f"FLAME -> this head (retargeting, issue 17 part 3): lip gap correlation of the FLAME "
          f"source (the runs carried onto the synthetic FLAME head) and this head, median "
          f"{np.median(corr_f2c):.3f}, worst {np.min(corr_f2c):.3f}")
    closed = [r["id"] for r in per_head if r["closure_n"] and r["closure_hits"] == r["closure_n"]]
    print(f"clips whose every bilabial closes on the head: {len(closed)} of "
          f"{sum(1 for r in per_head if r['closure_n'])} with bilabials")
    if args.json:
        Path(args.json).write_text(json.dumps({"matched": found, "missing": missing,
                                               "unknown": unknown, "landmarks": marks,
                                               "pooled": rows, "per_clip": per_head,
                                               "per_clip_open_head": per_open},
                                              indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
