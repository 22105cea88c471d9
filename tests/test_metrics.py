"""Lip-sync metric maths (METRICS.md) on hand-made lip-gap and width signals."""

import numpy as np
import pytest

from emote.model_runtime.training import metrics as M

FPS = 25.0
# 0.0-0.2 SIL, AA 0.2-0.4 (frames 5-9, mid 0.3 -> frame 7), P 0.4-0.5 (central 0.42-0.48: frames
# 10-11), IY 0.5-0.7 (mid 0.6 -> frame 15), M 0.7-0.72 (20 ms: too short to count),
# UW 0.72-0.88 (mid 0.8 -> frame 20), B 0.88-0.96 (central 0.896-0.944: frames 22-23),
# EH 0.96-1.02 (60 ms, mid 0.99 -> frame 24), AH 1.02-1.05 (30 ms: not counted)
PHONES = [["SIL", 0.0, 0.2], ["AA", 0.2, 0.4], ["P", 0.4, 0.5], ["IY", 0.5, 0.7],
          ["M", 0.7, 0.72], ["UW", 0.72, 0.88], ["B", 0.88, 0.96], ["EH", 0.96, 1.02],
          ["AH", 1.02, 1.05], ["SIL", 1.05, 1.2]]
T = 30


def _gap(closed_frames=(10, 11, 22, 23), open_mm=10.0):
    g = np.full(T, open_mm)
    g[list(closed_frames)] = 0.5
    return g


def test_open_vowel_reference_and_threshold():
    g = _gap()
    g[7], g[15], g[20], g[24] = 12.0, 8.0, 6.0, 10.0  # median of the 4 vowel middles = 9.0
    m = M.clip_metrics(g, None, PHONES, FPS)
    assert m["g_open"] == pytest.approx(9.0)
    assert m["tau"] == pytest.approx(2.25)
    assert m["false_n"] == 4 and m["false_hits"] == 0


def test_closure_recall_counts_only_long_bilabials_and_uses_central_frames():
    m = M.clip_metrics(_gap(), None, PHONES, FPS)
    assert m["closure_n"] == 2 and m["closure_hits"] == 2
    # closing only at a frame outside P's central 60% does not count
    g = _gap(closed_frames=(9, 22))
    m = M.clip_metrics(g, None, PHONES, FPS)
    assert m["closure_hits"] == 1
    # one closed frame inside the central part is enough (minimum over the central frames)
    m = M.clip_metrics(_gap(closed_frames=(11, 23)), None, PHONES, FPS)
    assert m["closure_hits"] == 2


def test_false_closure_at_vowel_middle():
    g = _gap()
    g[15] = 1.0  # IY middle closed
    m = M.clip_metrics(g, None, PHONES, FPS)
    assert m["false_hits"] == 1 and m["false_n"] == 4
    pooled = M.pool([m, M.clip_metrics(_gap(), None, PHONES, FPS)])
    assert pooled["false_closure_rate"] == pytest.approx(1 / 8)
    assert pooled["closure_recall"] == pytest.approx(1.0)


def test_rounding_against_unrounded_vowel_width():
    w = np.full(T, 50.0)
    w[20] = 47.4  # UW middle: 0.948 of the unrounded median -> rounded
    m = M.clip_metrics(_gap(), w, PHONES, FPS)
    assert m["round_n"] == 1 and m["round_hits"] == 1
    w[20] = 47.6  # 0.952: not rounded enough
    missed = M.clip_metrics(_gap(), w, PHONES, FPS)
    assert missed["round_hits"] == 0
    # pooled per target phone, so a report can say which of UW, OW, W the mouth misses
    assert M.pool([m, missed])["rounding_by_phone"] == {"UW": {"rate": 0.5, "n": 2}}


def test_sync_lag_finds_a_known_shift():
    rng = np.random.default_rng(0)
    ref = np.convolve(rng.standard_normal(200), np.ones(4) / 4, mode="same")
    late = np.concatenate([np.zeros(3), ref[:-3]])  # animation 3 frames late
    lag, corrs = M.sync_lag(late, ref)
    assert lag == 3
    assert corrs[3] > 0.99 > corrs[0]
    early = np.concatenate([ref[2:], np.zeros(2)])
    assert M.sync_lag(early, ref)[0] == -2


def test_clip_without_open_vowels_counts_nothing():
    phones = [["SIL", 0.0, 0.2], ["M", 0.2, 0.3], ["SIL", 0.3, 0.4]]
    m = M.clip_metrics(np.zeros(10), None, phones, FPS)
    assert m["closure_n"] == 0 and m["false_n"] == 0


def test_signals_from_landmark_vertices():
    class H:  # minimal head: landmark lookup only
        names = ["lip_upper_inner", "lip_lower_inner", "mouth_corner_left", "mouth_corner_right"]

        def landmark(self, n):
            return self.names.index(n)

    v = np.zeros((2, 4, 3))
    v[:, 0, 1] = 0.005
    v[1, 1, 1] = -0.007
    v[:, 2, 0], v[:, 3, 0] = 0.025, -0.025
    g, w = M.signals_from_vertices(v, H())
    assert g == pytest.approx([5.0, 12.0]) and w == pytest.approx([50.0, 50.0])


def test_training_lip_signals_match_the_metric_on_the_open_head():
    """The stage-2 lip-gap and mouth-width losses look at the same signals the metric scores."""
    import torch

    from emote.model_runtime.heads.head_model import load_head
    from emote.model_runtime.heads.open_head import default_head_path
    from emote.model_runtime.training.head_views import HeadViews
    from emote.model_runtime.training.losses import mouth_width_loss

    head = load_head(default_head_path())
    views = HeadViews(head, face_max=200, mouth_count=16, emotion_count=20)
    rng = np.random.default_rng(3)
    exp = rng.uniform(0, 1, (1, 6, head.exp_dirs.shape[-1])).astype(np.float32)
    jaw = np.zeros((1, 6, 3), np.float32)
    jaw[..., 0] = np.linspace(0, 0.3, 6)
    g_ref, w_ref = M.lip_signals(head, exp[0], jaw[0])
    v = views(torch.from_numpy(exp), torch.from_numpy(jaw))
    assert views.lip_gap_mm(v)[0].numpy() == pytest.approx(g_ref, abs=1e-3)
    w = views.mouth_width_mm(v)
    assert w[0].numpy() == pytest.approx(w_ref, abs=1e-3)
    assert float(mouth_width_loss(w, w)) == 0.0
    assert float(mouth_width_loss(w + 2.0, w, narrow_weight=0.0)) == pytest.approx(2.0)
    flat = torch.full((1, 4), 50.0)
    narrow = torch.tensor([[50.0, 50.0, 50.0, 45.0]])  # last frame rounded: 5x the weight
    assert float(mouth_width_loss(flat, narrow)) == pytest.approx(5.0 * 5.0 / 4)
