"""bench/face_visibility.py's Workbench renderer: the same pose renders to the same pixels (so the
changed share measures the expression, not render noise), and an emotion preset changes some."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="the visibility renders need the bpy wheel (pip install bpy)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import face_visibility as FV  # noqa: E402

from emote.model_runtime.heads import open_head  # noqa: E402
from emote.model_runtime.heads.head_model import load_head  # noqa: E402

pytestmark = pytest.mark.blender


def test_same_pose_same_pixels_and_an_emotion_changes_them():
    head = load_head(open_head.default_head_path())
    render = FV.Renderer(head, size=96)
    ne, nj = open_head.preset_vector("neutral", head.exp_names)
    se, sj = open_head.preset_vector("surprised", head.exp_names)
    a, b, s = render(ne, nj), render(ne, nj), render(se, sj)
    assert a.shape == (96, 96, 3)
    assert FV.changed_share(a, b) == 0.0
    face = FV.foreground(a, render.background_rgb(a))
    assert 0.1 < face.mean() < 0.9  # the head is in frame, not filling it
    assert FV.changed_share(a, s) > 0.005
    assert FV.changed_share(a, s, region=face) > FV.changed_share(a, s)
