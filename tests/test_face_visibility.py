"""bench/face_visibility.py's figures: the changed-pixel share and the jaw statistics at phone
centres (issue 16 part 1's measurement), on synthetic images and a made-up alignment."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import face_visibility as FV  # noqa: E402


def _img(h=64, w=64, colour=(0.5, 0.5, 0.5)):
    return np.broadcast_to(np.asarray(colour, np.float64), (h, w, 3)).copy()


def test_identical_images_change_nothing():
    a = np.random.default_rng(0).uniform(size=(32, 48, 3))
    assert FV.changed_share(a, a.copy()) == 0.0
    assert FV.changed_share(a, a.copy(), region=np.ones((32, 48), bool)) == 0.0


def test_changed_region_gives_its_share_of_all_and_of_the_region():
    a = _img()
    b = a.copy()
    b[:16, :32, 1] += 0.2  # one channel changed over 16 x 32 of 64 x 64 pixels
    assert FV.changed_share(a, b) == pytest.approx(16 * 32 / (64 * 64))
    face = np.zeros((64, 64), bool)
    face[:32, :32] = True  # half the face changed
    assert FV.changed_share(a, b, region=face) == pytest.approx(0.5)
    assert FV.changed_share(a, b, region=np.zeros((64, 64), bool)) == 0.0


def test_differences_under_the_threshold_are_not_changes():
    a = _img()
    b = a + 4.0 / 255.0  # rendering noise, under 8/255
    assert FV.changed_share(a, b) == 0.0
    b[0, 0] += 10.0 / 255.0
    assert FV.changed_share(a, b) == pytest.approx(1 / (64 * 64))


def test_images_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        FV.changed_share(_img(64, 64), _img(32, 64))


def test_foreground_is_what_is_not_background():
    img = _img(colour=(0.55, 0.58, 0.62))
    img[10:20, 10:30] = (0.8, 0.6, 0.5)
    assert FV.foreground(img, np.array([0.55, 0.58, 0.62])).sum() == 10 * 20


def test_jaw_statistics_read_open_vowel_and_bilabial_centres():
    # 25 fps, 50 frames: AA 0.20-0.40 s (middle frame 7), M 0.40-0.48 s (middle frame 11),
    # IY 0.60-0.64 s too short to count (< 60 ms), OW 1.00-1.20 s (middle frame 27)
    phones = [["sil", 0.0, 0.2], ["AA1", 0.2, 0.4], ["M", 0.4, 0.48], ["sil", 0.48, 0.6],
              ["IY", 0.6, 0.64], ["sil", 0.64, 1.0], ["OW0", 1.0, 1.2], ["sil", 1.2, 2.0]]
    T = 50
    jaw_open = np.zeros(T)
    jaw_open[7], jaw_open[11], jaw_open[15], jaw_open[27] = 0.5, 0.05, 0.9, 0.2
    jaw = np.zeros((T, 3))
    jaw[:, 0] = np.radians(20.0) * jaw_open
    st = FV.jaw_statistics([(phones, jaw_open, jaw)])
    ov, bl = st["open_vowels"], st["bilabials"]
    assert ov["jawOpen"]["n"] == 2  # AA and OW; the short IY and the frame 15 value are not read
    assert ov["jawOpen"]["median"] == pytest.approx(0.35)
    assert ov["jawOpen"]["above"] == pytest.approx(0.5)  # 0.5 > 0.3, 0.2 is not
    assert ov["jaw_deg"]["median"] == pytest.approx(7.0)
    assert bl["jawOpen"]["n"] == 1 and bl["jawOpen"]["median"] == pytest.approx(0.05)


def test_distribution_of_nothing_is_empty_not_an_error():
    d = FV.distribution([])
    assert d["n"] == 0 and np.isnan(d["median"])


def test_frame_picks_stay_inside_the_clip():
    picks = FV.frame_picks(100, 5)
    assert len(picks) == 5 and min(picks) >= 9 and max(picks) <= 90
    assert picks == sorted(picks)
