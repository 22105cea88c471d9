"""Text that fits the sidebar: how many characters fit across a region, and word wrapping."""

from __future__ import annotations


def chars_per_line(context) -> int:
    """About how many characters of the UI font fit across the region being drawn."""
    region = getattr(context, "region", None)
    width = getattr(region, "width", 0) or 300
    scale = (context.preferences.system.ui_scale if context.preferences else 0.0) or 1.0
    return max(20, int((width - 40 * scale) / (6.5 * scale)))


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap into lines of at most `width` characters (a longer word stands alone);
    always at least one line."""
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else []) or [""]
