"""Absolute seal and opening in millimetres (issue 14 part 5) and the held-out-speaker
evaluation's band limiting."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from emote.model_runtime.training import metrics as M

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import eval_lipsync  # noqa: E402

FPS = 25.0
# same layout as test_metrics: P frames 10-11, B frames 22-23 (M too short); vowel middles at
# frames 7, 15, 20, 24
PHONES = [["SIL", 0.0, 0.2], ["AA", 0.2, 0.4], ["P", 0.4, 0.5], ["IY", 0.5, 0.7],
          ["M", 0.7, 0.72], ["UW", 0.72, 0.88], ["B", 0.88, 0.96], ["EH", 0.96, 1.02],
          ["AH", 1.02, 1.05], ["SIL", 1.05, 1.2]]


def test_seal_and_open_gaps_are_read_where_closure_and_false_closure_look():
    g = np.full(30, 6.0)
    g[10], g[11] = 3.0, 0.4      # P: minimum over its central frames = 0.4
    g[22], g[23] = 2.0, 2.5      # B: 2.0
    g[7], g[15], g[20], g[24] = 12.0, 8.0, 6.0, 10.0
    m = M.clip_metrics(g, None, PHONES, FPS)
    assert m["seal_gaps_mm"] == [0.4, 2.0]
    assert sorted(m["open_gaps_mm"]) == [6.0, 8.0, 10.0, 12.0]
    p = M.pool([m, M.clip_metrics(np.full(30, 5.0), None, PHONES, FPS)])
    assert p["seal_gap_mm"] == pytest.approx(np.median([0.4, 2.0, 5.0, 5.0]))
    assert p["open_gap_mm"] == pytest.approx(np.median([6, 8, 10, 12, 5, 5, 5, 5]))


def test_a_half_open_hover_fails_the_absolute_figures_even_when_relative_ones_pass():
    """A mouth that dips from 6 mm to 1.4 mm on bilabials passes closure recall (tau = 1.5 mm)
    but neither seals (<= 1 mm) nor opens (>= 9 mm)."""
    g = np.full(30, 6.0)
    g[[10, 11, 22, 23]] = 1.4
    m = M.pool([M.clip_metrics(g, None, PHONES, FPS)])
    assert m["closure_recall"] == 1.0 and m["false_closure_rate"] == 0.0
    assert m["seal_gap_mm"] > M.SEAL_TARGET_MM and m["open_gap_mm"] < M.OPEN_TARGET_MM


def test_table_shows_the_mm_columns_only_when_asked():
    m = M.pool([M.clip_metrics(np.full(30, 5.0), None, PHONES, FPS)])
    assert "seal" not in M.format_table({"x": m})
    t = M.format_table({"x": m}, mm=True)
    assert "seal" in t and "open" in t and "5.00" in t


def test_telephone_band_limits_the_heldout_clips_and_full_band_keeps_them():
    rng = np.random.default_rng(0)
    clips = [{"id": "a", "audio": rng.standard_normal(16000).astype(np.float32) * 0.1,
              "phones": []}]
    assert eval_lipsync.band_limited(clips, "full")[0]["audio"] is clips[0]["audio"]
    tel = eval_lipsync.band_limited(clips, "tel8k")[0]["audio"]
    spec = np.abs(np.fft.rfft(tel)) ** 2
    f = np.fft.rfftfreq(len(tel), 1 / 16000)
    assert spec[f > 4200].sum() / spec.sum() < 0.01
    with pytest.raises(ValueError, match="tel8k"):
        eval_lipsync.band_limited(clips, "am-radio")


def test_heldout_clips_come_only_from_heldout_speakers(tmp_path, monkeypatch):
    import soundfile as sf

    from emote.model_runtime.training import speaker_split

    lst = tmp_path / "h.txt"
    lst.write_text("speaker queen:bob\n")
    monkeypatch.setattr(speaker_split, "HELDOUT_FILE", lst)
    speaker_split.load_heldout.cache_clear()
    (tmp_path / "c" / "wavs").mkdir(parents=True)
    rows = []
    for uid, spk in [("queen-1", "queen:bob"), ("queen-2", "queen:faye"),
                     ("queen-3", "queen:unknown")]:
        sf.write(str(tmp_path / "c" / "wavs" / f"{uid}.wav"), np.zeros(8000), 16000)
        rows.append({"id": uid, "wav": f"wavs/{uid}.wav", "source": "game", "speaker": spk,
                     "phones": [["SIL", 0, 0.5]]})
    (tmp_path / "c" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = eval_lipsync.heldout_clips(str(tmp_path / "c"))
    assert [c["id"] for c in got] == ["queen-1"]
    with pytest.raises(SystemExit, match="game_corpus"):
        eval_lipsync.heldout_clips(str(tmp_path / "nothing"))
    speaker_split.load_heldout.cache_clear()
