"""What the panel's one progress bar says during a Generate: a share of the whole job, in words.

The runtime reports stages (`load_model`, `load_audio`, `inference` i/n, `write`); the panel shows
one bar from 0 to 1 over the whole job (start-up and baking included) with words an animator
understands. Pure functions, no bpy.
"""

from __future__ import annotations

# (share of the job done when the stage starts, share when it ends, words); the runtime's own
# stage names on the left, the client's (starting, queued, baking) beside them.
STAGES: dict[str, tuple[float, float, str]] = {
    "starting runtime": (0.00, 0.05, "Starting the runtime (loading PyTorch)"),
    "queued": (0.05, 0.06, "Waiting for the runtime"),
    "load_model": (0.06, 0.10, "Loading model"),
    "load_audio": (0.10, 0.15, "Reading audio"),
    "inference": (0.15, 0.90, "Analysing speech"),
    "write": (0.90, 0.93, "Saving the animation"),
    "done": (0.93, 0.95, "Baking keys"),
    "baking": (0.95, 1.00, "Baking keys"),
}
UNKNOWN = (0.05, 0.10, "Working")


def describe(stage: str, done: int = 0, total: int = 0) -> tuple[float, str]:
    """(fraction of the whole Generate, label) for a runtime or client stage."""
    start, end, words = STAGES.get(stage, UNKNOWN)
    if total > 0:
        part = min(max(done / total, 0.0), 1.0)
        fraction = start + (end - start) * part
        if stage == "inference":
            return fraction, f"{words} {int(round(100 * part))}%"
        return fraction, words
    return start, words


def advance(previous: float, fraction: float) -> float:
    """The bar never moves back (a stage that restarts its own count does not rewind it)."""
    return max(previous, fraction)
