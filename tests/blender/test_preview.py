"""The preview render (emote_blender/preview.py): front and three-quarter cameras, both views side
by side in one video frame, and the PNG fallback's frames and contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.blender.conftest import bpy

pytestmark = pytest.mark.blender
SIZE = 48


@pytest.fixture
def head_scene(installed):
    from bl_ext.user_default.emote.emote_blender import heads, preview
    from bl_ext.user_default.emote.emote_blender.main_job import load_head_model

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    model = load_head_model(None)
    head, _rig = heads.build_head(model, collection=scene.collection)
    preview.colour_head(head, model)
    scene.frame_start, scene.frame_end = 1, 2
    yield scene, head
    bpy.ops.wm.read_factory_settings(use_empty=True)


def movie_size(path: Path) -> tuple[int, int]:
    clip = bpy.data.movieclips.load(str(path))
    try:
        return tuple(clip.size)
    finally:
        bpy.data.movieclips.remove(clip)


def test_front_and_three_quarter_cameras_frame_the_head_alike(head_scene):
    from bl_ext.user_default.emote.emote_blender import preview

    scene, head = head_scene
    front, three_q = preview.setup_camera(scene, head, SIZE)
    assert scene.camera == front
    # As high as asked, as wide as the head needs (narrower than square), even for H.264.
    w, h = scene.render.resolution_x, scene.render.resolution_y
    assert h == SIZE and 0.6 * SIZE <= w < SIZE and w % 2 == 0
    assert preview.preview_views(scene) == ["front", "three_quarter"]
    assert front.data.ortho_scale == three_q.data.ortho_scale  # the head the same size in both
    assert math.degrees(front.rotation_euler[2]) == pytest.approx(0.0)
    assert math.degrees(three_q.rotation_euler[2]) == pytest.approx(40.0)
    # Both look at the head's centre from the same distance.
    from mathutils import Vector

    centre = np.mean([head.matrix_world @ Vector(c) for c in head.bound_box], axis=0)
    for cam in (front, three_q):
        look = np.array(cam.rotation_euler.to_matrix() @ Vector((0, 0, -1)))
        to_head = centre - np.array(cam.location)
        assert np.linalg.norm(np.cross(look, to_head / np.linalg.norm(to_head))) < 0.02
    one = preview.setup_camera(scene, head, SIZE, views=("front",))
    assert len(one) == 1
    with pytest.raises(ValueError, match="unknown preview views"):
        preview.setup_camera(scene, head, SIZE, views=("side",))


def test_video_has_both_views_side_by_side_and_settings_are_restored(head_scene, tmp_path):
    from bl_ext.user_default.emote.emote_blender import preview

    scene, head = head_scene
    preview.setup_camera(scene, head, SIZE)
    before = (scene.render.use_multiview, scene.render.image_settings.views_format)
    video = preview.render_video(scene, tmp_path / "both.mp4", 1, 2)
    assert video == (tmp_path / "both.mp4").resolve() and video.stat().st_size > 1000
    width = scene.render.resolution_x
    assert movie_size(video) == (2 * width, SIZE)
    assert (scene.render.use_multiview, scene.render.image_settings.views_format) == before
    assert [p.name for p in tmp_path.iterdir()] == ["both.mp4"]  # no temporary folder left
    front_only = preview.render_video(scene, tmp_path / "front.mp4", 1, 2, views=["front"])
    assert movie_size(front_only) == (width, SIZE)
    camera = scene.camera
    preview.render_video(scene, tmp_path / "three_quarter.mp4", 1, 2, views=["three_quarter"])
    assert scene.camera == camera  # the front camera again afterwards


def test_fallback_frames_and_contact_sheet_hold_both_views(head_scene, tmp_path):
    """Without a video writer the frames are PNGs (both views in each) tiled into a sheet."""
    from bl_ext.user_default.emote.emote_blender import preview

    scene, head = head_scene
    preview.setup_camera(scene, head, SIZE)
    with preview._MultiView(scene, preview.preview_views(scene)):
        frames = preview._render_pngs(scene, tmp_path, 1, 2)
    w = scene.render.resolution_x
    img = bpy.data.images.load(str(frames[0]))
    assert tuple(img.size) == (2 * w, SIZE)
    px = np.array(img.pixels[:]).reshape(SIZE, 2 * w, 4)
    bpy.data.images.remove(img)
    left, right = px[:, :w, :3], px[:, w:, :3]
    assert np.abs(left - right).mean() > 0.01  # two different views, not one twice
    sheet = preview.contact_sheet(frames, tmp_path / "sheet.png", cols=2)
    img = bpy.data.images.load(str(sheet))
    assert tuple(img.size) == (4 * w, SIZE)
    bpy.data.images.remove(img)
    assert not list(tmp_path.glob(".sheet.png.*"))
    # a short last row: the empty cell is the render's background colour, not a white tile
    img = bpy.data.images.load(str(preview.contact_sheet(frames, tmp_path / "gap.png", cols=3)))
    gap = np.array(img.pixels[:]).reshape(SIZE, 6 * w, 4)[::-1]
    bpy.data.images.remove(img)
    assert np.allclose(gap[:, 4 * w:, :3], left[0, 0], atol=2 / 255)
    assert gap[:, 4 * w:, :3].max() < 0.95
