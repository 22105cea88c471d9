"""A small back-off n-gram language model of a closed set of lines (a game's script), written in
ARPA format for pocketsphinx, and the matching of a recognised word string to those lines.

Used to find which line an untranscribed clip speaks: decode it against the lines' LM, then keep
the closest line only when its word error rate is low and clearly below the next different line.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

DISCOUNT = 0.1  # little back-off mass: the decoder keeps close to whole script lines


def _log10(p: float) -> float:
    return math.log10(max(p, 1e-99))


def _interp(prob: list[dict], backoff: list[dict], gram: tuple) -> float:
    """P(gram[-1] | gram[:-1]) of the back-off model built so far."""
    if gram in prob[len(gram) - 1]:
        return prob[len(gram) - 1][gram]
    return backoff[len(gram) - 2].get(gram[:-1], 1.0) * _interp(prob, backoff, gram[1:])


def write_arpa(sentences: list[list[str]], path: Path | str, order: int = 3,
               discount: float = DISCOUNT) -> int:
    """Write an absolute-discounting back-off LM of `sentences` (word lists); returns #unigrams."""
    counts: list[Counter] = [Counter() for _ in range(order)]
    for words in sentences:
        seq = ["<s>"] + list(words) + ["</s>"]
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                gram = tuple(seq[i: i + n])
                if n == 1 and gram == ("<s>",):
                    continue
                counts[n - 1][gram] += 1
    total = sum(counts[0].values())
    vocab = sorted({g[0] for g in counts[0]} | {"<s>"})
    prob: list[dict] = [dict() for _ in range(order)]
    backoff: list[dict] = [dict() for _ in range(order)]
    for w in vocab:
        prob[0][(w,)] = counts[0].get((w,), 0) / total if w != "<s>" else 0.0
    for n in range(2, order + 1):
        by_hist: dict[tuple, list] = defaultdict(list)
        for gram, c in counts[n - 1].items():
            by_hist[gram[:-1]].append((gram, c))
        for hist, items in by_hist.items():
            c_h = sum(c for _, c in items)
            for gram, c in items:
                prob[n - 1][gram] = (c - discount) / c_h
            left = discount * len(items) / c_h

            seen_lower = sum(_interp(prob, backoff, gram[1:]) for gram, _ in items)
            backoff[n - 2][hist] = left / max(1e-9, 1.0 - seen_lower)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n in range(order):
            f.write(f"ngram {n + 1}={len(prob[n])}\n")
        for n in range(order):
            f.write(f"\n\\{n + 1}-grams:\n")
            for gram in sorted(prob[n]):
                p = -99.0 if gram == ("<s>",) else _log10(prob[n][gram])
                line = f"{p:.4f} {' '.join(gram)}"
                if n < order - 1:
                    line += f" {_log10(backoff[n].get(gram, 1.0)):.4f}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    return len(prob[0])


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def best_lines(hyp: list[str], lines: list[list[str]], top: int = 2) -> list[tuple[float, int]]:
    """(word error rate, index) of the `top` closest distinct lines to `hyp`, best first.

    Lines with the same words count once (the first index is kept), so a line repeated in the
    script is not its own competitor. WER is errors over the line's length.
    """
    seen: dict[tuple, int] = {}
    for i, words in enumerate(lines):
        seen.setdefault(tuple(words), i)
    scored = []
    n_h = len(hyp)
    for words, i in seen.items():
        if not words:
            continue
        if abs(len(words) - n_h) > max(len(words), n_h):  # cannot beat WER 1
            continue
        scored.append((word_errors(list(words), hyp) / len(words), i))
    scored.sort()
    return scored[:top]
