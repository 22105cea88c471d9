"""The emotion categories and intensity levels of the condition vector: the one source.

Order as in EMOTE and DESIGN.md; an emotion's index is its one-hot column and its value in the
panel's enum. Standard library only, so Blender's own Python can import it.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry",
                             "contempt")
N_EMOTIONS = len(EMOTIONS)
INTENSITY_LEVELS = 3  # MEAD levels 1..3 -> one-hot columns 0..2
