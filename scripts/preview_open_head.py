"""Render the bundled open head headless with Blender's Workbench engine (bpy module).

Front and three-quarter views of the neutral head, a viseme grid and the eight emotions, as PNGs
plus one contact sheet. Vertices are evaluated in numpy for every pose and set on one bpy mesh.

    .venv/bin/python scripts/preview_open_head.py [--out out/head_preview] [--size 360]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

from emote.model_runtime.heads import open_head  # noqa: E402
from emote.emote_blender.preview import GROUP_COLOURS, contact_sheet  # noqa: E402
from emote.model_runtime.heads.head_model import evaluate, load_head  # noqa: E402
from emote.model_runtime.emotions import EMOTIONS  # noqa: E402

VISEMES = ("rest", "AA_open", "OO_rounded", "EE_spread", "MBP_closed", "FV")
# view name -> (camera azimuth around the head in degrees, 0 = front; orthographic scale)
VIEWS = {"front": (0.0, 0.31), "three_quarter": (40.0, 0.31), "profile": (90.0, 0.31),
         "mouth": (0.0, 0.11), "eyes": (0.0, 0.11)}


def to_blender(v: np.ndarray) -> np.ndarray:
    """FLAME (y up, +z forward) to Blender (z up, -y forward)."""
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], axis=-1)


def build_scene(head, size: int):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.film_transparent = False
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_cavity = False
    shading.show_backface_culling = False
    scene.display.render_aa = "8"
    world = bpy.data.worlds.new("w")
    scene.world = world
    world.color = (0.55, 0.58, 0.62)

    mesh = bpy.data.meshes.new("open_head")
    mesh.from_pydata(to_blender(head.v_template).tolist(), [], head.faces.tolist())
    names = [str(n) for n in head.extra["face_group_names"]]
    for name in names:
        mat = bpy.data.materials.new(name)
        mat.diffuse_color = GROUP_COLOURS.get(name, (0.8, 0.8, 0.8, 1))
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", head.extra["face_group"].astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    obj = bpy.data.objects.new("open_head", mesh)
    scene.collection.objects.link(obj)

    cam = bpy.data.cameras.new("cam")
    cam.type = "ORTHO"
    cam_obj = bpy.data.objects.new("cam", cam)
    scene.collection.objects.link(cam_obj)
    scene.camera = cam_obj
    return scene, mesh, cam_obj


def place_camera(cam_obj, view: str, head) -> None:
    azim, scale = VIEWS[view]
    target = {"mouth": (0.0, -0.06, 0.09), "eyes": (0.0, 0.004, 0.06)}.get(view, (0.0, -0.022, 0.0))
    target = np.asarray(target)
    t = to_blender(target)
    a = math.radians(azim)
    dist = 0.8
    # camera in front of the face (Blender -y), turned by azim towards the subject's left (+x)
    cam_obj.location = (t[0] + dist * math.sin(a), t[1] - dist * math.cos(a), t[2])
    cam_obj.rotation_euler = (math.pi / 2, 0.0, a)
    cam_obj.data.ortho_scale = scale
    cam_obj.data.clip_end = 5.0


def set_pose(mesh, head, exp: np.ndarray, jaw: np.ndarray) -> None:
    v = evaluate(head, exp[None], jaw[None])[0]
    mesh.vertices.foreach_set("co", to_blender(v).astype(np.float32).ravel())
    mesh.update()


def render(scene, path: Path) -> None:
    import bpy

    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/head_preview")
    ap.add_argument("--size", type=int, default=360)
    ap.add_argument("--head", default=None, help="head .npz (default: build the open head)")
    ap.add_argument("--only", default=None, help="comma-separated pose names to render")
    args = ap.parse_args(argv)
    head = load_head(args.head) if args.head else open_head.build_open_head()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene, mesh, cam_obj = build_scene(head, args.size)

    jobs = [("neutral", "front"), ("neutral", "three_quarter"), ("neutral", "profile"),
            ("neutral", "eyes")]
    jobs += [(v, "mouth") for v in VISEMES]
    jobs += [(e, "front") for e in EMOTIONS] + [(e, "three_quarter") for e in EMOTIONS[1:4]]
    jobs = list(dict.fromkeys(jobs))
    if args.only:
        keep = set(args.only.split(","))
        jobs = [j for j in jobs if j[0] in keep]
    paths, labels = [], []
    for pose, view in jobs:
        exp, jaw = open_head.preset_vector(pose, head.exp_names)
        set_pose(mesh, head, exp, jaw)
        place_camera(cam_obj, view, head)
        path = out / f"{pose}_{view}.png"
        render(scene, path)
        paths.append(path)
        labels.append(f"{pose} ({view})")
    contact_sheet(paths, out / "contact_sheet.png", max_tiles=len(paths), cols=7)
    (out / "contact_sheet.txt").write_text("\n".join(labels) + "\n")
    print(f"wrote {len(paths)} renders and {out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
