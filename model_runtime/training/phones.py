"""The phone classes the lip reader predicts (ARPAbet without stress, plus silence)."""

from __future__ import annotations

import numpy as np

ARPABET = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
           "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
           "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")
PHONE_CLASSES: tuple[str, ...] = ("SIL",) + ARPABET
SIL = 0
_INDEX = {p: i for i, p in enumerate(PHONE_CLASSES)}
OPEN_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
BILABIALS = frozenset(("P", "B", "M"))


def phone_class(label: str) -> int:
    """Class index of an ARPAbet label ('AH0' -> AH); silence and unknown labels map to SIL."""
    base = "".join(c for c in str(label).upper() if c.isalpha())
    return _INDEX.get(base, SIL)


def frame_labels(phones, num_frames: int, fps: float = 25.0) -> np.ndarray:
    """Per-frame phone class (num_frames,) from [[label, start_s, end_s], ...] at frame centres."""
    out = np.full(num_frames, SIL, dtype=np.int64)
    centres = (np.arange(num_frames) + 0.5) / fps
    for label, start, end in phones:
        out[(centres >= float(start)) & (centres < float(end))] = phone_class(label)
    return out
