"""The bundled default model's results stay what they were before the official-checkpoint work
(attention modes, official framing and window length): the reference arrays in
tests/data/default_model_reference.npz were computed with the runtime as of commit 5956646, on a
clip with a partial last frame that is longer than one inference window (so the whole-clip
normalisation, the tail samples and the window cross-fades are all exercised).

Regenerate (only when the default model itself is replaced on purpose):
    .venv/bin/python tests/test_default_model_unchanged.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REFERENCE = Path(__file__).resolve().parent / "data" / "default_model_reference.npz"
SECONDS = 25.3  # 632 whole frames + 320 samples: > one 504-frame window, partial last frame


def _rows(n: int) -> np.ndarray:
    """Stored rows: every 4th frame and the last 12 (enough to catch any change, small on disk)."""
    return np.unique(np.concatenate([np.arange(0, n, 4), np.arange(max(0, n - 12), n)]))


def _clip(path: Path) -> Path:
    """A deterministic speech-like test signal: harmonic bursts with a syllable rhythm + noise."""
    rate = 16000
    t = np.arange(int(SECONDS * rate)) / rate
    rng = np.random.RandomState(1234)
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.7 * t), 0, None) ** 2
    x = 0.25 * voiced * envelope + 0.01 * rng.randn(t.size)
    sf.write(str(path), x.astype(np.float32), rate, subtype="FLOAT")
    return path


def _run(tmp: Path) -> dict:
    from emote.model_runtime.inference import generate_result, get_model

    torch.set_num_threads(1)
    model, config, model_id = get_model("default")
    req = {"audio": str(_clip(tmp / "clip.wav")), "fps": 25.0, "model": "default",
           "emotion": {"names": ["happy", "surprised"], "weights": [[0.7, 0.3]]},
           "intensity": [0.8]}
    res = generate_result(req, model, config, model_id)
    rows = _rows(res["exp"].shape[0])
    return {"rows": rows, "exp": res["exp"][rows], "jaw": res["jaw"][rows],
            "frames": np.int64(res["exp"].shape[0])}


def test_default_model_results_unchanged(tmp_path):
    ref = np.load(REFERENCE)
    got = _run(tmp_path)
    assert int(got["frames"]) == int(ref["frames"])
    assert np.array_equal(got["rows"], ref["rows"])
    # Same machine and thread count: bit-identical; elsewhere float kernels may differ in the
    # last bits, far below any change of framing, windows or attention (those move 1e-3 and up).
    for key in ("exp", "jaw"):
        assert np.abs(got[key] - ref[key]).max() <= 2e-6, key


if __name__ == "__main__":  # regenerate the reference
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))
    with tempfile.TemporaryDirectory() as d:
        out = _run(Path(d))
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **out)
    print(f"wrote {REFERENCE}: {int(out['frames'])} frames, {len(out['rows'])} rows stored")
