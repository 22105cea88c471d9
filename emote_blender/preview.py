"""The preview video of a Generate: a Workbench render of the talking head, front and
three-quarter views side by side, with the dialogue's audio.

Both views come from one render pass: Blender's multi-view rendering with one camera per view
(`<name>_front`, `<name>_three_quarter`), written side by side into one frame. The video uses
Blender's own FFMPEG output, then the ffmpeg program, and falls back to a PNG contact sheet when
neither can write a video. The curve plot is drawn by the runtime (curve_plot.py, matplotlib).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

# Face-group colours of the open head (RGBA), used when the head model names its face groups.
GROUP_COLOURS = {
    "skin": (0.80, 0.60, 0.50, 1), "lips": (0.70, 0.36, 0.36, 1), "brows": (0.25, 0.17, 0.12, 1),
    "mouth": (0.10, 0.02, 0.03, 1), "teeth": (0.93, 0.92, 0.86, 1),
    "tongue": (0.75, 0.35, 0.38, 1), "eye_white": (0.95, 0.95, 0.95, 1),
    "iris": (0.25, 0.40, 0.55, 1), "pupil": (0.02, 0.02, 0.02, 1),
    "lashes": (0.07, 0.05, 0.04, 1),
}


# --- materials and camera ---------------------------------------------------------------------

def colour_head(obj, head_model) -> None:
    """Give a head built from `head_model` one material per face group (when it names them)."""
    import bpy

    extra = getattr(head_model, "extra", {}) or {}
    if "face_group" not in extra or "face_group_names" not in extra or obj.data.materials:
        return
    groups = np.asarray(extra["face_group"], dtype=np.int32)
    if groups.shape[0] != len(obj.data.polygons):
        return
    for name in [str(n) for n in extra["face_group_names"]]:
        mat = bpy.data.materials.get(f"emote_{name}") or bpy.data.materials.new(f"emote_{name}")
        mat.diffuse_color = GROUP_COLOURS.get(name, (0.8, 0.8, 0.8, 1))
        obj.data.materials.append(mat)
    obj.data.polygons.foreach_set("material_index", groups)
    obj.data.update()


CAMERA_NAME = "EMOTE preview camera"
# View -> (camera-name suffix, camera azimuth in degrees around the head: 0 = front, positive =
# turned towards the character's left, as scripts/preview_open_head.py does).
VIEWS = {"front": ("_front", 0.0), "three_quarter": ("_three_quarter", 40.0)}
# Blender's two stereo views carry our two cameras: multi-view picks each view's camera by the
# suffix, and the stereo side-by-side output puts them left and right in one frame.
_VIEW_SLOTS = {"front": "left", "three_quarter": "right"}
MARGIN = 1.1  # frame height over the head's height
SIDE_MARGIN = 1.25  # frame width over the head's widest view: room for it to turn and sway
MIN_ASPECT = 0.6  # narrowest view (width / height)


def setup_camera(scene, obj, size: int = 512, name: str = CAMERA_NAME,
                 views: tuple[str, ...] = tuple(VIEWS)) -> list:
    """Orthographic cameras framing the head, one per view; Workbench, `size` px high.

    Each view is as wide as the widest view of the head needs (a head with its neck is taller
    than wide: about 3:5, less background to render than a square). The front camera becomes
    the scene camera; all cameras share one scale, so the head is the same size in each.
    Returns the cameras in `views` order."""
    import bpy

    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views:
        raise ValueError(f"unknown preview views {unknown}; known: {', '.join(VIEWS)}")
    pts = _points_of(obj)
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    depth = float(np.linalg.norm(hi - lo))
    height = float(hi[2] - lo[2])
    width = 0.0
    for view in views:
        a = math.radians(VIEWS[view][1])
        right = np.array([math.cos(a), math.sin(a), 0.0])  # the camera's x axis in the world
        across = (pts - centre) @ right  # the image is centred on the head's centre
        width = max(width, 2.0 * float(np.abs(across).max()))
    height, width = height * MARGIN, width * SIDE_MARGIN
    aspect = min(max(width / max(height, 1e-9), MIN_ASPECT), 1.0)
    size_x = max(2, 2 * round(size * aspect / 2))  # even: H.264 needs even frame sizes
    # An orthographic scale spans the frame's longer side, here its height.
    scale = max(height, width * size / size_x)
    cams = []
    for view in views:
        suffix, azimuth = VIEWS[view]
        cam_name = name + suffix
        cam_data = bpy.data.cameras.get(cam_name) or bpy.data.cameras.new(cam_name)
        cam_data.type = "ORTHO"
        cam_data.ortho_scale = float(scale)
        cam_data.clip_end = float(4 * depth + 10)
        cam = bpy.data.objects.get(cam_name) or bpy.data.objects.new(cam_name, cam_data)
        if cam.name not in scene.collection.objects:
            scene.collection.objects.link(cam)
        # The face looks towards Blender -y: the camera stands there, looking along +y, turned
        # about the head's vertical axis by the view's azimuth.
        a = math.radians(azimuth)
        dist = 2.0 * depth + 1.0
        cam.location = (float(centre[0] + dist * math.sin(a)),
                        float(centre[1] - dist * math.cos(a)), float(centre[2]))
        cam.rotation_euler = (math.pi / 2, 0.0, a)
        cams.append(cam)
    scene.camera = cams[0]
    r = scene.render
    r.engine = "BLENDER_WORKBENCH"
    r.resolution_x, r.resolution_y = int(size_x), int(size)
    r.resolution_percentage = 100
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL" if obj.data.materials else "SINGLE"
    shading.single_color = GROUP_COLOURS["skin"][:3]
    shading.show_backface_culling = False
    scene.display.render_aa = "OFF"  # FXAA doubles the time per frame, 8x multisampling ~5x
    scene.view_settings.view_transform = "Standard"  # true material colours, not AgX-washed
    if scene.world is None:
        scene.world = bpy.data.worlds.new("EMOTE preview")
    scene.world.color = (0.55, 0.58, 0.62)
    return cams


def _points_of(obj) -> np.ndarray:
    """World-space vertex positions of a mesh object (its bounding box corners otherwise)."""
    mw = np.array(obj.matrix_world, dtype=np.float64)
    mesh = getattr(obj, "data", None)
    if mesh is not None and hasattr(mesh, "vertices") and len(mesh.vertices):
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", co)
        local = co.reshape(-1, 3)
    else:
        local = np.array([tuple(c) for c in obj.bound_box], dtype=np.float64)
    return local @ mw[:3, :3].T + mw[:3, 3]


def preview_views(scene, name: str = CAMERA_NAME) -> list[str]:
    """The views whose cameras setup_camera made in `scene` (front first)."""
    return [v for v, (suffix, _a) in VIEWS.items() if (name + suffix) in scene.objects]


class _MultiView:
    """Multi-view rendering of the preview cameras for the length of a render, then undone.

    With two views each frame is rendered once per camera and written side by side (stereo
    side-by-side, not squeezed); with one view nothing changes."""

    def __init__(self, scene, views: list[str], name: str = CAMERA_NAME):
        self.scene, self.views, self.name = scene, views, name

    def __enter__(self):
        r, ims = self.scene.render, self.scene.render.image_settings
        self.saved = (r.use_multiview, r.views_format, ims.views_format,
                      ims.stereo_3d_format.display_mode,
                      ims.stereo_3d_format.use_sidebyside_crosseyed,
                      ims.stereo_3d_format.use_squeezed_frame,
                      {v.name: (v.use, v.camera_suffix) for v in r.views})
        self.camera = self.scene.camera
        if len(self.views) < 2:
            r.use_multiview = False
            if self.views:  # the one view's own camera (the scene camera is the front one)
                cam = self.scene.objects.get(self.name + VIEWS[self.views[0]][0])
                self.scene.camera = cam or self.camera
            return self
        r.use_multiview = True
        r.views_format = "MULTIVIEW"
        for v in r.views:
            v.use = v.name in _VIEW_SLOTS.values()
        for view, slot in _VIEW_SLOTS.items():
            r.views[slot].camera_suffix = VIEWS[view][0]
        ims.views_format = "STEREO_3D"
        ims.stereo_3d_format.display_mode = "SIDEBYSIDE"
        ims.stereo_3d_format.use_sidebyside_crosseyed = False  # left = front
        ims.stereo_3d_format.use_squeezed_frame = False  # full width: 2 x size
        return self

    def __exit__(self, *exc):
        r, ims = self.scene.render, self.scene.render.image_settings
        (r.use_multiview, r.views_format, ims.views_format, ims.stereo_3d_format.display_mode,
         ims.stereo_3d_format.use_sidebyside_crosseyed,
         ims.stereo_3d_format.use_squeezed_frame, views) = self.saved
        for v in r.views:
            if v.name in views:
                v.use, v.camera_suffix = views[v.name]
        self.scene.camera = self.camera
        return False


# --- video --------------------------------------------------------------------------------------

def render_video(scene, out_path: str | Path, first: int, last: int,
                 audio: str | Path | None = None, audio_start_s: float = 0.0,
                 ffmpeg: str | None = None, views: list[str] | None = None) -> Path:
    """Render frames first..last (inclusive) as an mp4 with the scene's sound.

    `views` (default: every view setup_camera made) are rendered side by side, front on the
    left, each at the scene's resolution. Tries Blender's FFMPEG output, then PNG frames muxed
    by the ffmpeg program (with `audio`), and writes `<out>.png` (a contact sheet) instead when
    no video can be written. The video appears at `out_path` only when whole.
    """
    from ..model_runtime import safe_write

    final = Path(out_path).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    safe_write.clean_stale_temps(final)
    # Rendered in a folder beside `final` (Blender names a multi-view movie after its view),
    # renamed over `final` when complete.
    part = safe_write.temp_path(final)
    part.mkdir()

    def install(video: Path) -> Path:
        os.chmod(video, safe_write.file_mode())
        os.replace(video, final)
        return final

    ffmpeg = ffmpeg if ffmpeg is not None else shutil.which("ffmpeg")
    views = preview_views(scene) if views is None else list(views)
    old = (scene.frame_start, scene.frame_end, scene.render.filepath, scene.render.use_sequencer)
    scene.frame_start, scene.frame_end = int(first), int(last)
    # The dialogue reaches the video only through the sequencer's mixdown; with nothing but
    # sound strips in it, the sequencer still renders the 3D view (the head) as the picture.
    scene.render.use_sequencer = _only_sound_strips(scene)
    try:
        with _MultiView(scene, views):
            video = _render_with_blender_ffmpeg(scene, part / "preview.mp4")
            if video is not None:
                return install(video)
            with tempfile.TemporaryDirectory(prefix="emote_preview_") as tmp:
                frames = _render_pngs(scene, Path(tmp), first, last)
                if ffmpeg and _mux_with_ffmpeg(ffmpeg, Path(tmp), scene, part / "muxed.mp4",
                                               audio, audio_start_s):
                    return install(part / "muxed.mp4")
                sheet = final.with_suffix(".png")
                contact_sheet(frames, sheet, cols=2 if len(views) > 1 else 4)
                return sheet
    finally:
        scene.frame_start, scene.frame_end, scene.render.filepath = old[:3]
        scene.render.use_sequencer = old[3]
        shutil.rmtree(part, ignore_errors=True)


def _only_sound_strips(scene) -> bool:
    ed = scene.sequence_editor
    if ed is None:
        return True
    strips = ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all
    return all(s.type == "SOUND" for s in strips)


def _render_with_blender_ffmpeg(scene, out_path: Path) -> Path | None:
    """Blender's own movie output; the file it wrote (a multi-view movie carries the first
    view's suffix in its name), or None when it could not write one."""
    import bpy

    ims = scene.render.image_settings
    saved = (getattr(ims, "media_type", None), ims.file_format)
    try:
        if hasattr(ims, "media_type"):
            ims.media_type = "VIDEO"  # 5.0: choose video before the container
        ims.file_format = "FFMPEG"
        ff = scene.render.ffmpeg
        ff.format, ff.codec = "MPEG4", "H264"
        ff.constant_rate_factor = "MEDIUM"
        ff.ffmpeg_preset = "REALTIME"
        ff.audio_codec, ff.audio_channels, ff.audio_mixrate = "AAC", "MONO", 48000
        ff.audio_bitrate = 128
        out_path.unlink(missing_ok=True)
        scene.render.filepath = str(out_path)
        scene.render.use_file_extension = False
        bpy.ops.render.render(animation=True)
    except (RuntimeError, TypeError, ValueError):
        return None
    finally:
        try:
            if saved[0] is not None:
                ims.media_type = saved[0]
            ims.file_format = saved[1]
        except (TypeError, ValueError):
            pass
    written = [p for p in out_path.parent.glob(f"{out_path.stem}*{out_path.suffix}")
               if p.is_file() and p.stat().st_size > 1000]
    return written[0] if len(written) == 1 else None


def _render_pngs(scene, folder: Path, first: int, last: int) -> list[Path]:
    import bpy

    ims = scene.render.image_settings
    if hasattr(ims, "media_type"):
        ims.media_type = "IMAGE"
    ims.file_format = "PNG"
    out = []
    for i, f in enumerate(range(int(first), int(last) + 1)):
        scene.frame_set(f)
        path = folder / f"{i:05d}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        out.append(path)
    return out


def _mux_with_ffmpeg(ffmpeg: str, folder: Path, scene, out_path: Path, audio, start_s) -> bool:
    fps = scene.render.fps / scene.render.fps_base
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"{fps:.6f}", "-i",
           str(folder / "%05d.png")]
    if audio:
        cmd += ["-ss", f"{start_s:.4f}", "-i", str(audio), "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-f", "mp4",
            str(out_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and out_path.is_file()


def contact_sheet(frames: list[Path], out: Path, max_tiles: int = 12, cols: int = 4) -> Path:
    """Tile up to `max_tiles` evenly spaced rendered frames into one PNG, `cols` per row."""
    import bpy

    pick = [frames[int(round(i))] for i in np.linspace(0, len(frames) - 1,
                                                        min(max_tiles, len(frames)))]
    tiles = []
    for p in pick:
        img = bpy.data.images.load(str(p))
        w, h = img.size
        tiles.append(np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4)[::-1])
        bpy.data.images.remove(img)
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / cols)
    # cells past the last frame take the first frame's corner colour (the render background),
    # not white, so a short last row reads as empty space rather than a failed render
    sheet = np.empty((rows * h, cols * w, 4), dtype=np.float32)
    sheet[:] = tiles[0][0, 0]
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return save_png(out, sheet)


def save_png(path: str | Path, rgba: np.ndarray) -> Path:
    """Write a top-down (H, W, 4) float image (0..1, sRGB values) as a PNG with Blender's own
    image writer; `path` is replaced only when whole."""
    import bpy

    from ..model_runtime import safe_write

    path = Path(path).resolve()
    rgba = np.clip(np.asarray(rgba, dtype=np.float32), 0.0, 1.0)
    h, w = rgba.shape[:2]
    safe_write.clean_stale_temps(path)
    part = safe_write.temp_path(path)
    img = bpy.data.images.new("EMOTE contact sheet", w, h, alpha=False)
    try:
        img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())  # Blender: bottom up
        img.filepath_raw = str(part)
        img.file_format = "PNG"
        img.save()
        os.chmod(part, safe_write.file_mode())
        os.replace(part, path)
    finally:
        bpy.data.images.remove(img)
        part.unlink(missing_ok=True)
    return path
