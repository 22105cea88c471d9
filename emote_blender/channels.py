"""Which model output drives which part of a rig: shape keys by name, the jaw to a bone or key.

Plain Python. Names match loosely so FLAME heads (`exp000`, `exp_0`) and ARKit rigs
(`mouthSmile_L`, `mouthSmileLeft`) built by other tools are driven without renaming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_EXP = re.compile(r"^(?:flame)?exp(?:ression)?0*(\d+)$")


def normalise(name: str) -> str:
    """Canonical form of a channel name for matching."""
    n = name.lower()
    if re.search(r"[_.][lr]$", n):  # ARKit-style suffix _L/_R -> Left/Right
        n = n[:-2] + ("left" if n[-1] == "l" else "right")
    n = re.sub(r"[^0-9a-z]", "", n)
    m = _EXP.match(n)
    if m:
        return f"exp{int(m.group(1))}"
    return n


@dataclass
class ChannelMap:
    """How a result's channels land on a rig."""

    shape_keys: dict[int, str] = field(default_factory=dict)  # exp column -> shape key name
    jaw_bone: str | None = None  # pose bone that receives the jaw rotation
    jaw_open_key: str | None = None  # ARKit key fed from the jaw when there is no bone
    unmatched: list[str] = field(default_factory=list)  # model channels with no target


def match_channels(exp_names: list[str], shape_key_names: list[str], bone_names: list[str],
                   jaw_open_full_rad: float = 0.45) -> ChannelMap:
    """Map model channels onto a rig's shape keys and bones; list what found no target."""
    keys = {normalise(k): k for k in shape_key_names}
    cmap = ChannelMap()
    jaw = [b for b in bone_names if b.lower() == "jaw"] or [b for b in bone_names
                                                             if "jaw" in b.lower()]
    cmap.jaw_bone = jaw[0] if jaw else None
    if cmap.jaw_bone is None and "jawopen" in keys:
        cmap.jaw_open_key = keys["jawopen"]
    for i, name in enumerate(exp_names):
        target = keys.get(normalise(name))
        if target is None or target == cmap.jaw_open_key:
            cmap.unmatched.append(name)
        else:
            cmap.shape_keys[i] = target
    if cmap.jaw_bone is None and cmap.jaw_open_key is None:
        cmap.unmatched.append("jaw")
    return cmap


def jaw_to_open(jaw_x, full_rad: float = 0.45):
    """jawOpen key value for a jaw rotation about +x (radians): clamp(x / full, 0, 1)."""
    import numpy as np

    return np.clip(np.asarray(jaw_x, dtype=np.float64) / full_rad, 0.0, 1.0)
