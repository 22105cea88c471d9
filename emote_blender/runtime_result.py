"""Checks on the runtime's result file (RESULT.npz of DESIGN.md) before anything is baked.

No bpy here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model_runtime.errors import RuntimeFailure


def read_result(path: str | Path, frame_count: int) -> dict:
    """Load and check RESULT.npz (DESIGN.md); RuntimeFailure(bad_result) when it is not usable."""
    path = Path(path)

    def bad(msg: str) -> RuntimeFailure:
        return RuntimeFailure("bad_result", f"The runtime's result {path.name} is unusable: {msg}. "
                              "Try Generate again; report it if it repeats.")

    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # missing file, bad zip, pickled arrays
        raise bad(str(exc)) from None
    for key in ("fps", "exp", "jaw", "exp_names"):
        if key not in d:
            raise bad(f"it lacks '{key}'")
    exp, jaw = d["exp"].astype(np.float32), d["jaw"].astype(np.float32)
    names = [str(s) for s in d["exp_names"]]
    if exp.ndim != 2 or exp.shape[1] != len(names) or jaw.shape != (exp.shape[0], 3):
        raise bad(f"exp {exp.shape}, jaw {jaw.shape} and {len(names)} names do not fit")
    if exp.shape[0] != frame_count:
        raise bad(f"it has {exp.shape[0]} frames, the strip needs {frame_count}")
    if not (np.all(np.isfinite(exp)) and np.all(np.isfinite(jaw))):
        raise bad("it contains NaN or Inf")
    life = {}  # head (T, 3) and gaze (T, 2): optional, all zero in results made without them
    for key, width in (("head", 3), ("gaze", 2)):
        arr = d[key].astype(np.float32) if key in d else np.zeros((exp.shape[0], width),
                                                                     np.float32)
        if arr.shape != (exp.shape[0], width) or not np.all(np.isfinite(arr)):
            raise bad(f"{key} {arr.shape} is not {exp.shape[0]} finite rows of {width}")
        life[key] = arr
    return {"fps": float(d["fps"]), "exp": exp, "jaw": jaw, "exp_names": names, **life,
            "model_id": str(d.get("model_id", "")), "head_id": str(d.get("head_id", ""))}
