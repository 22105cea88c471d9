"""A made-up line with bilabials, rounded and open vowels, animated by the teacher (for tests)."""

from __future__ import annotations

import numpy as np

from emote.model_runtime.training.teacher import one_emotion_curve, teacher_animation

PHONES = "M AA P IY B OW M UW S AH M AE T F AO B IH D M EY K AA P".split()


def made_up_line(repeats: int = 1):
    """(exp (T, 40) open-head channels, jaw (T, 3), phones [[phone, start_s, end_s], ...]) at
    25 fps, the same for the same `repeats` (seeded)."""
    rng = np.random.default_rng(1)
    phones, t = [], 0.1
    for ph in PHONES * repeats:
        d = float(rng.uniform(0.07, 0.18))
        phones.append([ph, t, t + d])
        t += d
    T = int(t * 25) + 5
    w, inten = one_emotion_curve(T, "happy", 0.5)
    exp, jaw = teacher_animation(phones, rng.normal(0, 0.1, T * 640), w, inten, rng=rng)
    return exp, jaw, phones
