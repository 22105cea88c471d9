"""Previews of a Generate: a Workbench video of the talking head with its audio, and a PNG plot
of the emotion curve over the key mouth and brow channels.

The plot is drawn with numpy (a small built-in bitmap font, a zlib PNG writer) so nothing beyond
numpy is needed; the video uses Blender's own FFMPEG output, then the ffmpeg program, and falls
back to a PNG contact sheet when neither can write a video.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

# Face-group colours of the open head (RGBA), used when the head model names its face groups.
GROUP_COLOURS = {
    "skin": (0.80, 0.60, 0.50, 1), "lips": (0.70, 0.36, 0.36, 1), "brows": (0.25, 0.17, 0.12, 1),
    "mouth": (0.10, 0.02, 0.03, 1), "teeth": (0.93, 0.92, 0.86, 1),
    "tongue": (0.75, 0.35, 0.38, 1), "eye_white": (0.95, 0.95, 0.95, 1),
    "iris": (0.25, 0.40, 0.55, 1), "pupil": (0.02, 0.02, 0.02, 1),
}
EMOTION_COLOURS = {  # RGB 0..255, one per EMOTE emotion
    "neutral": (170, 170, 170), "happy": (240, 190, 40), "sad": (70, 110, 200),
    "surprised": (230, 120, 200), "fear": (130, 80, 170), "disgusted": (90, 160, 60),
    "angry": (210, 50, 40), "contempt": (150, 110, 70),
}
LINE_COLOURS = ((200, 40, 40), (40, 110, 200), (30, 150, 60), (200, 120, 20), (130, 60, 170),
                (20, 150, 160), (90, 90, 90))
MOUTH_CHANNELS = ("jawOpen", "mouthSmile_L", "mouthFunnel", "mouthPucker", "mouthClose",
                  "mouthFrown_L")
BROW_CHANNELS = ("browInnerUp", "browOuterUp_L", "browDown_L", "browOuterUp_R", "browDown_R")


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
    obj.data.polygons.foreach_set("use_smooth", np.ones(len(obj.data.polygons), dtype=bool))
    obj.data.update()


def setup_camera(scene, obj, size: int = 512, name: str = "EMOTE preview camera"):
    """A front orthographic camera framing the head, Workbench render at `size` x `size`."""
    import bpy

    corners = np.array([obj.matrix_world @ _vec(c) for c in obj.bound_box], dtype=np.float64)
    lo, hi = corners.min(0), corners.max(0)
    centre = (lo + hi) / 2
    extent = max(hi[0] - lo[0], hi[2] - lo[2])
    cam_data = bpy.data.cameras.get(name) or bpy.data.cameras.new(name)
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = float(extent * 1.1)
    cam_data.clip_end = float(10 * (hi[1] - lo[1]) + 10)
    cam = bpy.data.objects.get(name) or bpy.data.objects.new(name, cam_data)
    if cam.name not in scene.collection.objects:
        scene.collection.objects.link(cam)
    # The face looks towards Blender -y: put the camera there, looking along +y.
    cam.location = (float(centre[0]), float(lo[1] - 2.0 * extent - 1.0), float(centre[2]))
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = cam
    r = scene.render
    r.engine = "BLENDER_WORKBENCH"
    r.resolution_x = r.resolution_y = int(size)
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
    return cam


def _vec(c):
    from mathutils import Vector

    return Vector(c)


# --- video --------------------------------------------------------------------------------------

def render_video(scene, out_path: str | Path, first: int, last: int,
                 audio: str | Path | None = None, audio_start_s: float = 0.0,
                 ffmpeg: str | None = None) -> Path:
    """Render frames first..last (inclusive) as an mp4 with the scene's sound.

    Tries Blender's FFMPEG output, then PNG frames muxed by the ffmpeg program (with `audio`),
    and writes `<out>.png` (a contact sheet) instead when no video can be written.
    """
    from model_runtime import safe_write

    final = Path(out_path).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    safe_write.clean_stale_temps(final)
    part = safe_write.temp_path(final)  # rendered there, renamed over `final` when complete

    def install() -> Path:
        os.chmod(part, safe_write.file_mode())
        os.replace(part, final)
        return final

    ffmpeg = ffmpeg if ffmpeg is not None else shutil.which("ffmpeg")
    old = (scene.frame_start, scene.frame_end, scene.render.filepath, scene.render.use_sequencer)
    scene.frame_start, scene.frame_end = int(first), int(last)
    # The dialogue reaches the video only through the sequencer's mixdown; with nothing but
    # sound strips in it, the sequencer still renders the 3D view (the head) as the picture.
    scene.render.use_sequencer = _only_sound_strips(scene)
    try:
        if _render_with_blender_ffmpeg(scene, part):
            return install()
        with tempfile.TemporaryDirectory(prefix="emote_preview_") as tmp:
            frames = _render_pngs(scene, Path(tmp), first, last)
            if ffmpeg and _mux_with_ffmpeg(ffmpeg, Path(tmp), scene, part, audio,
                                           audio_start_s):
                return install()
            sheet = final.with_suffix(".png")
            contact_sheet(frames, sheet)
            return sheet
    finally:
        scene.frame_start, scene.frame_end, scene.render.filepath = old[:3]
        scene.render.use_sequencer = old[3]
        part.unlink(missing_ok=True)


def _only_sound_strips(scene) -> bool:
    ed = scene.sequence_editor
    if ed is None:
        return True
    strips = ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all
    return all(s.type == "SOUND" for s in strips)


def _render_with_blender_ffmpeg(scene, out_path: Path) -> bool:
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
        return False
    finally:
        try:
            if saved[0] is not None:
                ims.media_type = saved[0]
            ims.file_format = saved[1]
        except (TypeError, ValueError):
            pass
    return out_path.is_file() and out_path.stat().st_size > 1000


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
    """Tile up to `max_tiles` evenly spaced rendered frames into one PNG."""
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
    sheet = np.ones((rows * h, cols * w, 4), dtype=np.float32)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    write_png(out, (np.clip(sheet[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8))
    return out


# --- PNG writing and a tiny bitmap font --------------------------------------------------------

def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as an 8-bit RGB PNG (zlib only)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))
    from model_runtime.safe_write import write_bytes

    path = Path(path)
    write_bytes(path, png)  # replaced only when whole
    return path


def read_png(path: str | Path) -> np.ndarray:
    """Read back an 8-bit RGB PNG written by write_png (filter type 0 only); for tests."""
    data = Path(path).read_bytes()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3)


# 5x7 glyphs, one hex byte per row (bit 4 = leftmost column).
_FONT_HEX = {
    "A": "0E11111F111111", "B": "1E11111E11111E", "C": "0E11101010110E", "D": "1E11111111111E",
    "E": "1F10101E10101F", "F": "1F10101E101010", "G": "0E11101711110F", "H": "1111111F111111",
    "I": "0E04040404040E", "J": "0702020202120C", "K": "11121418141211", "L": "1010101010101F",
    "M": "111B1515111111", "N": "11111915131111", "O": "0E11111111110E", "P": "1E11111E101010",
    "Q": "0E11111115120D", "R": "1E11111E141211", "S": "0F10100E01011E", "T": "1F040404040404",
    "U": "1111111111110E", "V": "11111111110A04", "W": "1111111515150A", "X": "11110A040A1111",
    "Y": "11110A04040404", "Z": "1F01020408101F", "0": "0E11131519110E", "1": "040C040404040E",
    "2": "0E11010204081F", "3": "1F02040201110E", "4": "02060A121F0202", "5": "1F101E0101110E",
    "6": "0608101E11110E", "7": "1F010204080808", "8": "0E11110E11110E", "9": "0E11110F01020C",
    " ": "00000000000000", ".": "00000000000C0C", ":": "000C0C000C0C00", "-": "0000001F000000",
    "_": "0000000000001F", "(": "02040808080402", ")": "08040202020408", "/": "01010204081010",
    "=": "00001F001F0000", "+": "0004041F040400", ",": "000000000C0408", "%": "18190204081303",
}
_FONT = {ch: np.array([[(int(h[2 * r:2 * r + 2], 16) >> (4 - c)) & 1
                        for c in range(5)] for r in range(7)], dtype=bool)
         for ch, h in _FONT_HEX.items()}


def draw_text(img: np.ndarray, x: int, y: int, text: str, colour=(0, 0, 0), scale: int = 2) -> int:
    """Draw `text` (upper-cased) with its top-left corner at (x, y); returns the end x."""
    for ch in str(text).upper():
        glyph = _FONT.get(ch, _FONT["-"])
        big = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        h, w = big.shape
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, img.shape[0]), min(x + w, img.shape[1])
        if y1 > y0 and x1 > x0:
            region = img[y0:y1, x0:x1]
            region[big[y0 - y:y1 - y, x0 - x:x1 - x]] = colour
        x += 6 * scale
    return x


def _hline(img, y, x0, x1, colour, dashed=False):
    xs = np.arange(x0, x1)
    if dashed:
        xs = xs[(xs // 4) % 2 == 0]
    img[y, xs] = colour


def _vline(img, x, y0, y1, colour, dashed=False):
    ys = np.arange(y0, y1)
    if dashed:
        ys = ys[(ys // 4) % 2 == 0]
    img[ys, x] = colour


def _polyline(img, xs: np.ndarray, ys: np.ndarray, colour, thickness: int = 2) -> None:
    """Connect (xs[i], ys[i]) pixel points, xs increasing by one column at a time."""
    h = img.shape[0]
    for i in range(len(xs)):
        a = ys[i]
        b = ys[i + 1] if i + 1 < len(xs) else a
        lo, hi = int(min(a, b)), int(max(a, b)) + thickness
        img[max(lo, 0):min(hi, h), xs[i]:xs[i] + thickness] = colour


# --- the plot -----------------------------------------------------------------------------------

def pick_channels(exp_names: list[str], wanted: tuple[str, ...], fallback: range) -> list[int]:
    """Indices of the wanted channels present (case-insensitive), else the fallback indices."""
    lower = {n.lower(): i for i, n in enumerate(exp_names)}
    got = [lower[w.lower()] for w in wanted if w.lower() in lower]
    return got or [i for i in fallback if i < len(exp_names)]


def plot_curves(path: str | Path, fps: float, weights: np.ndarray, emotion_names, intensity,
                exp: np.ndarray, exp_names: list[str], jaw: np.ndarray | None = None,
                keys: list[tuple[str, float]] | None = None, title: str = "",
                size: tuple[int, int] = (1280, 900)) -> Path:
    """PNG: the emotion mixture and intensity over time above the key mouth and brow channels.

    `weights` (T, E) and `intensity` (T,) are the request's tracks, `exp` (T, C) the result;
    `keys` are (emotion, seconds) marks drawn as dashed lines across all panels.
    """
    W, H = size
    img = np.full((H, W, 3), 255, dtype=np.uint8)
    weights = np.asarray(weights, dtype=np.float64)
    T = weights.shape[0]
    t_end = max(T - 1, 1) / fps
    left, right = 90, W - 250
    draw_text(img, left, 14, title or "Emotion curve and key channels", (0, 0, 0), 3)
    panels = [(80, 330), (370, 610), (650, 860)]
    xs = np.arange(left, right)
    frame_at_x = (xs - left) / (right - left - 1) * (T - 1)

    def sample(series: np.ndarray) -> np.ndarray:
        return np.interp(frame_at_x, np.arange(T), np.asarray(series, dtype=np.float64))

    def frame_box(y0, y1, vmin, vmax, label):
        img[y0:y1, left] = img[y0:y1, right] = (0, 0, 0)
        img[y0, left:right] = img[y1 - 1, left:right] = (0, 0, 0)
        draw_text(img, left, y0 - 20, label, (0, 0, 0), 2)
        for v in (vmin, (vmin + vmax) / 2, vmax):
            y = int(round(y1 - 1 - (v - vmin) / (vmax - vmin) * (y1 - y0 - 2)))
            _hline(img, y, left, right, (215, 215, 215), dashed=True)
            draw_text(img, 8, y - 6, f"{v:.2f}", (60, 60, 60), 2)

    def to_y(values, y0, y1, vmin, vmax):
        v = (np.asarray(values) - vmin) / (vmax - vmin)
        return np.clip(np.round(y1 - 2 - v * (y1 - y0 - 4)), y0 + 1, y1 - 3).astype(int)

    # Panel 1: stacked emotion mixture with intensity on top.
    y0, y1 = panels[0]
    frame_box(y0, y1, 0.0, 1.0, "Emotion mixture (areas) and intensity (black line)")
    cum = np.zeros(len(xs))
    rows = np.arange(y0 + 1, y1 - 1)[:, None]
    for e, name in enumerate(emotion_names):
        w = sample(weights[:, e])
        if w.max() <= 1e-4:
            continue
        top, bottom = to_y(cum + w, y0, y1, 0, 1), to_y(cum, y0, y1, 0, 1)
        mask = (rows >= top[None, :]) & (rows < bottom[None, :])
        block = img[y0 + 1:y1 - 1, left:right]
        block[mask] = EMOTION_COLOURS.get(str(name), (200, 200, 200))
        cum += w
    _polyline(img, xs, to_y(sample(intensity), y0, y1, 0, 1), (0, 0, 0), 3)
    legend_y = y0
    for name in emotion_names:
        img[legend_y + 2:legend_y + 14, right + 20:right + 34] = EMOTION_COLOURS.get(
            str(name), (200, 200, 200))
        draw_text(img, right + 42, legend_y + 2, str(name), (0, 0, 0), 2)
        legend_y += 22
    draw_text(img, right + 20, legend_y + 6, "- intensity", (0, 0, 0), 2)

    # Panels 2 and 3: mouth and brow channels of the result.
    exp = np.asarray(exp, dtype=np.float64)
    mouth = [(exp_names[i], exp[:, i]) for i in pick_channels(exp_names, MOUTH_CHANNELS,
                                                              range(0, 3))]
    if jaw is not None:
        mouth.insert(0, ("jaw (rad)", np.asarray(jaw)[:, 0]))
    brows = [(exp_names[i], exp[:, i]) for i in pick_channels(exp_names, BROW_CHANNELS,
                                                              range(3, 6))]
    for (y0, y1), label, series in ((panels[1], "Mouth and jaw", mouth),
                                    (panels[2], "Brows", brows)):
        allv = np.concatenate([s for _n, s in series]) if series else np.zeros(1)
        vmin, vmax = float(min(allv.min(), 0.0)), float(max(allv.max(), 0.0))
        if vmax - vmin < 1e-6:
            vmax = vmin + 1.0
        frame_box(y0, y1, vmin, vmax, label)
        legend_y = y0
        for k, (name, s) in enumerate(series[:len(LINE_COLOURS)]):
            colour = LINE_COLOURS[k % len(LINE_COLOURS)]
            _polyline(img, xs, to_y(sample(s), y0, y1, vmin, vmax), colour, 2)
            img[legend_y + 6:legend_y + 9, right + 20:right + 34] = colour
            draw_text(img, right + 42, legend_y + 2, name, (0, 0, 0), 2)
            legend_y += 22

    # Time axis and the emotion keys.
    y_axis = panels[-1][1] + 6
    step = _nice_step(t_end)
    for t in np.arange(0.0, t_end + 1e-9, step):
        x = int(round(left + t / t_end * (right - left - 1)))
        _vline(img, x, y_axis - 4, y_axis + 2, (0, 0, 0))
        draw_text(img, x - 10, y_axis + 6, f"{t:g}", (0, 0, 0), 2)
    draw_text(img, right + 20, y_axis + 6, "seconds", (0, 0, 0), 2)
    for name, sec in keys or []:
        if 0 <= sec <= t_end:
            x = int(round(left + sec / t_end * (right - left - 1)))
            for y0, y1 in panels:
                _vline(img, x, y0, y1, (0, 0, 0), dashed=True)
            draw_text(img, x + 4, panels[0][0] + 4, name, (0, 0, 0), 2)
    return write_png(path, img)


def _nice_step(span: float) -> float:
    raw = span / 8 if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
