"""The request a Generate sends to the runtime (the request JSON of DESIGN.md). No bpy here."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_request(audio: str | Path, audio_start_s: float, audio_end_s: float | None, fps: float,
                  frame_count: int, model: str, identity: str, emotion_weights: np.ndarray,
                  intensity: np.ndarray, emotion_names: list[str] | tuple[str, ...]) -> dict:
    """The request JSON of DESIGN.md, checked for shape so the runtime never sees nonsense."""
    w = np.asarray(emotion_weights, dtype=np.float64)
    i = np.asarray(intensity, dtype=np.float64).reshape(-1)
    if w.shape != (frame_count, len(emotion_names)) or i.shape != (frame_count,):
        raise ValueError(f"emotion track {w.shape} / intensity {i.shape} do not match "
                         f"{frame_count} frames x {len(emotion_names)} emotions")
    return {
        "audio": str(Path(audio).resolve()),
        "audio_start_s": float(audio_start_s),
        "audio_end_s": None if audio_end_s is None else float(audio_end_s),
        "fps": float(fps),
        "frame_count": int(frame_count),
        "model": str(model),
        "identity": str(identity) if identity else None,
        "emotion": {"names": list(emotion_names), "weights": np.round(w, 6).tolist()},
        "intensity": np.round(i, 6).tolist(),
    }
