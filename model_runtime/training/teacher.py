"""The teacher: phone timings plus loudness to open-head animation targets at 25 fps (numpy only).

Training data for the talking-head model. Each phone class has a viseme (ARKit-named channel
targets plus a jaw angle); visemes blend with dominance functions (coarticulation, anticipatory
rounding); bilabials are sealed over exactly the frames the lip-sync metric inspects; loudness
scales the jaw; a speaking style and per-frame emotion mixtures shape the whole face.
"""

from __future__ import annotations

import numpy as np

from ..heads.arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS
from ..emotions import EMOTIONS

CH = {name: i for i, name in enumerate(OPEN_HEAD_CHANNELS)}
N_CH = len(OPEN_HEAD_CHANNELS)
SAMPLES_PER_FRAME_16K = 640  # at 25 fps

BILABIALS = frozenset({"P", "B", "M"})
LABIODENTALS = frozenset({"F", "V"})
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY",
                    "UH", "UW"})
ROUNDED = frozenset({"UW", "OW", "W", "UH", "OY", "AO", "ER", "R", "SH", "ZH", "CH", "JH"})


def _sym(**kw: float) -> dict[str, float]:
    """Expand `name` into name_L and name_R where the channel is sided."""
    out: dict[str, float] = {}
    for k, v in kw.items():
        if k in CH:
            out[k] = v
        else:
            out[k + "_L"] = v
            out[k + "_R"] = v
    return out


# Viseme per phone: (jaw radians, channel targets). Jaw angles are for a neutral style at normal
# loudness; JAW_OPEN_FULL_RAD (0.45) is a wide-open mouth. The vowels' angles are 30% above the
# first table's (AA was 0.20): students trained on it opened open vowels to a median jawOpen of
# 0.22, a mouth that hovered half open. The rounded vowels and W carry strong
# funnel and pucker (the mouth narrows to about 0.83 of the spread vowels' width): a student
# regresses toward the mean, so the teacher rounds more than the student should end up doing.
_VISEMES: dict[str, tuple[float, dict[str, float]]] = {
    "SIL": (0.0, {}),
    # vowels
    "AA": (0.26, _sym(mouthLowerDown=0.30, mouthUpperUp=0.12)),
    "AE": (0.22, _sym(mouthLowerDown=0.30, mouthUpperUp=0.15, mouthStretch=0.30)),
    "AH": (0.20, _sym(mouthLowerDown=0.22, mouthUpperUp=0.08)),
    "AO": (0.22, {**_sym(mouthLowerDown=0.20), "mouthFunnel": 0.35, "mouthPucker": 0.10}),
    "AW": (0.23, {**_sym(mouthLowerDown=0.25), "mouthFunnel": 0.30, "mouthPucker": 0.15}),
    "AY": (0.23, _sym(mouthLowerDown=0.25, mouthUpperUp=0.10, mouthStretch=0.15)),
    "EH": (0.18, _sym(mouthLowerDown=0.22, mouthUpperUp=0.10, mouthStretch=0.22)),
    "ER": (0.13, {**_sym(mouthLowerDown=0.18, mouthUpperUp=0.10), "mouthFunnel": 0.35,
                  "mouthPucker": 0.20}),
    "EY": (0.16, _sym(mouthLowerDown=0.20, mouthUpperUp=0.12, mouthStretch=0.30)),
    "IH": (0.13, _sym(mouthLowerDown=0.20, mouthUpperUp=0.12, mouthStretch=0.25)),
    "IY": (0.12, _sym(mouthLowerDown=0.22, mouthUpperUp=0.15, mouthStretch=0.40, mouthSmile=0.12)),
    "OW": (0.17, {**_sym(mouthLowerDown=0.15), "mouthFunnel": 0.78, "mouthPucker": 0.52}),
    "OY": (0.20, {**_sym(mouthLowerDown=0.18), "mouthFunnel": 0.45, "mouthPucker": 0.25}),
    "UH": (0.13, {**_sym(mouthLowerDown=0.15), "mouthFunnel": 0.45, "mouthPucker": 0.58}),
    "UW": (0.12, {**_sym(mouthLowerDown=0.18, mouthUpperUp=0.05), "mouthFunnel": 0.52,
                  "mouthPucker": 1.00}),
    # consonants
    "P": (0.01, {**_sym(mouthPress=0.50), "mouthRollLower": 0.10, "mouthRollUpper": 0.10}),
    "B": (0.01, {**_sym(mouthPress=0.40), "mouthRollLower": 0.08, "mouthRollUpper": 0.08}),
    "M": (0.01, {**_sym(mouthPress=0.30), "mouthRollLower": 0.05, "mouthRollUpper": 0.05}),
    "F": (0.03, {**_sym(mouthUpperUp=0.25), "mouthRollLower": 0.55, "mouthShrugLower": 0.20}),
    "V": (0.03, {**_sym(mouthUpperUp=0.22), "mouthRollLower": 0.50, "mouthShrugLower": 0.15}),
    "TH": (0.05, _sym(mouthLowerDown=0.18, mouthUpperUp=0.06)),
    "DH": (0.05, _sym(mouthLowerDown=0.16, mouthUpperUp=0.05)),
    "T": (0.05, _sym(mouthLowerDown=0.10, mouthUpperUp=0.08, mouthStretch=0.10)),
    "D": (0.05, _sym(mouthLowerDown=0.10, mouthUpperUp=0.08, mouthStretch=0.10)),
    "N": (0.05, _sym(mouthLowerDown=0.08, mouthUpperUp=0.06, mouthStretch=0.08)),
    "L": (0.07, _sym(mouthLowerDown=0.12, mouthUpperUp=0.08)),
    "S": (0.04, _sym(mouthLowerDown=0.10, mouthUpperUp=0.12, mouthStretch=0.25)),
    "Z": (0.04, _sym(mouthLowerDown=0.10, mouthUpperUp=0.12, mouthStretch=0.22)),
    "SH": (0.05, {**_sym(mouthLowerDown=0.12, mouthUpperUp=0.15), "mouthFunnel": 0.55,
                  "mouthPucker": 0.25}),
    "ZH": (0.05, {**_sym(mouthLowerDown=0.12, mouthUpperUp=0.15), "mouthFunnel": 0.50,
                  "mouthPucker": 0.25}),
    "CH": (0.05, {**_sym(mouthLowerDown=0.12, mouthUpperUp=0.15), "mouthFunnel": 0.50,
                  "mouthPucker": 0.25}),
    "JH": (0.05, {**_sym(mouthLowerDown=0.12, mouthUpperUp=0.15), "mouthFunnel": 0.50,
                  "mouthPucker": 0.25}),
    "K": (0.07, _sym(mouthLowerDown=0.10, mouthUpperUp=0.05)),
    "G": (0.07, _sym(mouthLowerDown=0.10, mouthUpperUp=0.05)),
    "NG": (0.07, _sym(mouthLowerDown=0.08, mouthUpperUp=0.05)),
    "HH": (0.10, _sym(mouthLowerDown=0.15, mouthUpperUp=0.05)),
    "R": (0.07, {**_sym(mouthLowerDown=0.10), "mouthFunnel": 0.30, "mouthPucker": 0.30}),
    "W": (0.04, {"mouthFunnel": 0.33, "mouthPucker": 1.00}),
    "Y": (0.06, _sym(mouthLowerDown=0.12, mouthUpperUp=0.10, mouthStretch=0.25)),
}
PHONES: tuple[str, ...] = tuple(_VISEMES)

# Channel groups blended with their own dominance (rounding spreads further ahead).
_ROUND_CH = [CH[c] for c in ("mouthFunnel", "mouthPucker")]


def _phone_dominance(ph: str) -> tuple[float, float, float, float, float]:
    """(strength for jaw/lips, strength for rounding, anticipation s, carry-over s, rounding antic. s)."""
    if ph == "SIL":
        return 0.6, 0.6, 0.05, 0.06, 0.05
    if ph in VOWELS:
        rnd = 1.0 if ph in ROUNDED else 2.0  # unrounded vowels resist rounding (spread lips)
        return 1.0, rnd, 0.04, 0.05, 0.16 if ph in ROUNDED else 0.05
    if ph in BILABIALS or ph in LABIODENTALS:
        return 1.2, 0.15, 0.03, 0.03, 0.03
    if ph == "HH":
        return 0.15, 0.05, 0.02, 0.02, 0.02
    if ph in ("W", "R", "SH", "ZH", "CH", "JH"):
        return 0.8, 1.0, 0.035, 0.035, 0.12
    if ph in ("K", "G", "NG"):
        return 0.35, 0.1, 0.03, 0.03, 0.03
    return 0.6, 0.1, 0.03, 0.03, 0.03


STYLE_PARAMS: dict[str, dict[str, float]] = {
    # amplitude: scales jaw and lip movement; tension: lip press/roll and less lip opening;
    # asym: left/right difference of mouth channels; spread: time constant scale (coarticulation)
    "neutral": {"amplitude": 1.00, "tension": 0.00, "asym": 0.02, "spread": 1.00},
    "crisp": {"amplitude": 1.10, "tension": 0.25, "asym": 0.02, "spread": 0.70},
    "relaxed": {"amplitude": 0.82, "tension": 0.00, "asym": 0.05, "spread": 1.40},
    "expressive": {"amplitude": 1.28, "tension": 0.05, "asym": 0.08, "spread": 1.00},
}
STYLES: tuple[str, ...] = tuple(STYLE_PARAMS)

# Whole-face emotion patterns at intensity 1 (channel -> value). Sad and disgusted are stronger
# than the first table (browInnerUp 0.75, noseSneer 0.70): at 512 px their students changed
# under 3% of the frame against neutral, too little to read at a glance. Contempt (a one-sided
# smirk, a sneer on the same side, heavy lids and one brow up, the other down) was 2.5% with the
# smirk alone and is 4.4% (bench/face_visibility.py --teacher).
EMOTION_PATTERNS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {**_sym(mouthSmile=0.70, cheekSquint=0.50, eyeSquint=0.30, mouthDimple=0.20)},
    "sad": {**_sym(mouthFrown=0.55, eyeBlink=0.30, browOuterUp=0.0), "browInnerUp": 1.00,
            "mouthShrugLower": 0.40},
    "surprised": {**_sym(browOuterUp=0.75, eyeWide=0.75), "browInnerUp": 0.60},
    "fear": {**_sym(browOuterUp=0.30, eyeWide=0.60, mouthStretch=0.45, browDown=0.15),
             "browInnerUp": 0.75},
    "disgusted": {**_sym(noseSneer=0.90, mouthUpperUp=0.45, browDown=0.55, eyeSquint=0.50,
                         mouthFrown=0.30, cheekSquint=0.25), "mouthShrugUpper": 0.25},
    "angry": {**_sym(browDown=0.85, eyeSquint=0.35, noseSneer=0.25, mouthFrown=0.20,
                     mouthPress=0.25)},
    "contempt": {"mouthSmile_L": 0.65, "mouthDimple_L": 0.70, "cheekSquint_L": 0.40,
                 "mouthPress_L": 0.15, "noseSneer_L": 0.20, "mouthLeft": 0.15,
                 "eyeSquint_L": 0.25, "eyeSquint_R": 0.15, "eyeBlink_L": 0.15,
                 "eyeBlink_R": 0.15, "browOuterUp_L": 0.30, "browDown_R": 0.20},
}
# How each emotion changes articulation: jaw scale, jaw bias (rad), lip tension, energy.
EMOTION_ARTICULATION: dict[str, tuple[float, float, float, float]] = {
    "neutral": (1.00, 0.000, 0.00, 1.00),
    "happy": (1.05, 0.000, 0.00, 1.05),
    "sad": (0.80, 0.000, 0.00, 0.80),
    "surprised": (1.15, 0.050, 0.00, 1.10),
    "fear": (1.00, 0.020, 0.10, 1.00),
    "disgusted": (0.90, 0.000, 0.10, 0.95),
    "angry": (1.00, 0.000, 0.35, 1.10),
    "contempt": (0.90, 0.000, 0.10, 0.90),
}
_MOUTH_SIDED = [i for i, n in enumerate(OPEN_HEAD_CHANNELS) if n.startswith("mouth") and
                n.endswith("_L")]
_EMO_VECS = np.stack([np.array([EMOTION_PATTERNS[e].get(n, 0.0) for n in OPEN_HEAD_CHANNELS])
                      for e in EMOTIONS])  # (8, 40)
_EMO_ART = np.array([EMOTION_ARTICULATION[e] for e in EMOTIONS])  # (8, 4)


def _viseme_vec(ph: str) -> tuple[float, np.ndarray]:
    jaw, d = _VISEMES.get(ph, _VISEMES["SIL"])
    v = np.zeros(N_CH)
    for k, x in d.items():
        v[CH[k]] = x
    return jaw, v


_VIS_TABLE = {ph: _viseme_vec(ph) for ph in PHONES}


def frame_of_time(t: float | np.ndarray, fps: float = 25.0) -> np.ndarray:
    """Index of the frame whose interval [k/fps, (k+1)/fps) contains time t (metrics use the same)."""
    return np.floor(np.asarray(t, dtype=np.float64) * fps + 1e-9).astype(np.int64)


def closure_frames(start: float, end: float, fps: float = 25.0) -> np.ndarray:
    """Frames of a phone's central 60% (at least one frame): where METRICS.md looks for closure."""
    d = end - start
    a = int(frame_of_time(start + 0.2 * d, fps))
    b = int(frame_of_time(end - 0.2 * d - 1e-6, fps))
    return np.arange(a, max(a, b) + 1)


def _clean_phones(phones) -> list[tuple[str, float, float]]:
    out = []
    for p in phones:
        ph = str(p[0]).upper().rstrip("012")
        s, e = float(p[1]), float(p[2])
        if e <= s:
            continue
        out.append((ph if ph in _VIS_TABLE else ("SIL" if ph in ("SP", "PAU", "H#", "") else ph),
                    s, e))
    return out


def _articulation(phones, T: int, fps: float, spread: float, hz: float = 100.0):
    """Blended jaw (T,) and mouth channels (T, 40) from dominance functions, averaged per frame."""
    phs = [p for p in _clean_phones(phones)]
    n_sub = int(round(hz / fps))
    t = (np.arange(T * n_sub) + 0.5) / (fps * n_sub)
    num_j = np.zeros_like(t)
    num_c = np.zeros((t.size, N_CH))
    den_a = np.full_like(t, 1e-3)  # weak rest pull where nothing is near
    den_r = np.full_like(t, 1e-3)
    num_r = np.zeros((t.size, len(_ROUND_CH)))
    for ph, s, e in phs:
        jaw, vec = _VIS_TABLE.get(ph, _VIS_TABLE["SIL"])
        a_main, a_round, ant, car, ant_r = _phone_dominance(ph)
        ant, car, ant_r = ant * spread, car * spread, ant_r * spread
        before = np.clip(s - t, 0, None)
        after = np.clip(t - e, 0, None)
        d_main = a_main * np.exp(-before / ant - after / car)
        d_round = a_round * np.exp(-before / ant_r - after / car)
        num_j += d_main * jaw
        num_c += d_main[:, None] * vec[None]
        den_a += d_main
        num_r += d_round[:, None] * vec[_ROUND_CH][None]
        den_r += d_round
    jaw_t = num_j / den_a
    ch = num_c / den_a[:, None]
    ch[:, _ROUND_CH] = num_r / den_r[:, None]
    jaw_f = jaw_t.reshape(T, n_sub).mean(1)
    ch_f = ch.reshape(T, n_sub, N_CH).mean(1)
    return jaw_f, ch_f


def frame_loudness(audio16k: np.ndarray, T: int) -> np.ndarray:
    """Per-frame loudness 0..1 from RMS in dB relative to the clip's loud frames, smoothed."""
    a = np.asarray(audio16k, dtype=np.float64)[: T * SAMPLES_PER_FRAME_16K]
    if T == 0:
        return np.zeros(0)
    rms = np.sqrt(np.mean(a.reshape(T, SAMPLES_PER_FRAME_16K) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-9)
    ref = np.percentile(db, 95)
    loud = np.clip((db - (ref - 30.0)) / 30.0, 0.0, 1.0)
    k = np.array([0.25, 0.5, 0.25])
    return np.convolve(np.pad(loud, 1, mode="edge"), k, mode="valid")


def _smooth_noise(T: int, rng: np.random.Generator, n: int, scale_frames: float) -> np.ndarray:
    """Smooth random curves (T, n) in about -1..1 (slow variation, no blinks)."""
    knots = max(2, int(T / scale_frames) + 2)
    x = rng.uniform(-1, 1, size=(knots, n))
    pos = np.linspace(0, knots - 1, T) if T > 0 else np.zeros(0)
    i0 = np.clip(np.floor(pos).astype(int), 0, knots - 2)
    f = pos - i0
    f = f * f * (3 - 2 * f)
    return x[i0] * (1 - f[:, None]) + x[i0 + 1] * f[:, None]


def teacher_animation(phones, audio16k: np.ndarray, emotion_weights: np.ndarray,
                      intensity: np.ndarray, style: str = "neutral",
                      rng: np.random.Generator | None = None, fps: float = 25.0,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Open-head targets: exp (T, 40) in OPEN_HEAD_CHANNELS order and jaw axis-angle (T, 3).

    T = floor(len(audio16k) / 640) at 25 fps (len * fps / 16000 in general). `phones` are
    [[ARPAbet phone, start_s, end_s], ...]; emotion_weights (T, 8) in EMOTE order, intensity (T,).
    """
    if style not in STYLE_PARAMS:
        raise ValueError(f"unknown style {style!r}; pick one of {STYLES}")
    rng = rng if rng is not None else np.random.default_rng(0)
    T = int(len(audio16k) * fps // 16000)
    sp = STYLE_PARAMS[style]
    W = np.asarray(emotion_weights, dtype=np.float64).reshape(T, len(EMOTIONS))
    I = np.clip(np.asarray(intensity, dtype=np.float64).reshape(T), 0, 1)
    WI = W * I[:, None]  # effective emotion strengths
    art = np.ones((T, 4)) * _EMO_ART[0] + WI @ (_EMO_ART - _EMO_ART[0])  # blend from neutral
    jaw_scale, jaw_bias, tension_e, energy = art.T

    jaw_v, ch = _articulation(phones, T, fps, sp["spread"])
    loud = frame_loudness(audio16k, T) if T else np.zeros(0)
    amp = sp["amplitude"] * float(rng.uniform(0.95, 1.05))
    speech_jaw = jaw_v * (0.65 + 0.35 * loud) * amp * jaw_scale * (0.85 + 0.15 * energy)
    lip_amp = amp * (0.8 + 0.2 * energy)
    tension = sp["tension"] + tension_e
    ch = ch * lip_amp[:, None]
    vert = [CH[n] for n in ("mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L",
                            "mouthUpperUp_R")]
    ch[:, vert] *= (1.0 - 0.3 * np.clip(tension, 0, 1))[:, None]
    speaking = np.clip(jaw_v / 0.08, 0, 1)
    for n in ("mouthPress_L", "mouthPress_R"):
        ch[:, CH[n]] += 0.25 * tension * (1 - speaking)
    # the jaw drops a little with surprise while speaking
    jaw_x = speech_jaw + jaw_bias * np.clip(jaw_v / 0.05, 0, 1)

    # emotion: whole-face pattern with slow small variation
    emo = WI @ _EMO_VECS
    var = 1.0 + 0.08 * _smooth_noise(T, rng, N_CH, 50.0)
    emo = emo * var
    exp = ch + emo

    # asymmetry of the mouth (style): one side slightly stronger
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    a = sp["asym"] * side
    for i in _MOUTH_SIDED:
        r = CH[OPEN_HEAD_CHANNELS[i][:-2] + "_R"]
        exp[:, i] *= 1 + a
        exp[:, r] *= 1 - a

    # bilabial closure: seal the lips over the frames the metric inspects, ease in/out
    seal = np.zeros(T)
    for ph, s, e in _clean_phones(phones):
        if ph not in BILABIALS:
            continue
        fr = closure_frames(s, e, fps)
        fr = fr[(fr >= 0) & (fr < T)]
        seal[fr] = 1.0
        for k in (fr.min() - 1 if fr.size else -1, fr.max() + 1 if fr.size else -1):
            if 0 <= k < T and seal[k] < 0.35:
                seal[k] = 0.35 if (s - 0.04) <= (k + 0.5) / fps <= (e + 0.04) else seal[k]
    jaw_closed = 0.004
    jaw_x = jaw_x * (1 - seal) + jaw_closed * seal
    sealed = seal >= 1.0
    open_lips = vert + [CH["mouthFunnel"], CH["mouthStretch_L"], CH["mouthStretch_R"]]
    exp[np.ix_(sealed, open_lips)] *= 0.1
    half = (seal > 0) & ~sealed
    exp[np.ix_(half, open_lips)] *= 0.6
    jaw_open = np.clip(jaw_x / JAW_OPEN_FULL_RAD, 0, 1)
    # the open head's mouthClose seals the lips with the jaw closed (inner gap < 0.5 mm)
    exp[:, CH["mouthClose"]] = np.maximum(exp[:, CH["mouthClose"]], seal)
    for n in ("mouthPress_L", "mouthPress_R"):
        exp[:, CH[n]] = np.maximum(exp[:, CH[n]], 0.35 * seal)
    exp[:, CH["jawOpen"]] = jaw_open

    exp = np.clip(exp, 0.0, 1.0).astype(np.float32)
    jaw = np.zeros((T, 3), dtype=np.float32)
    jaw[:, 0] = np.clip(jaw_x, 0.0, JAW_OPEN_FULL_RAD)
    return exp, jaw


def reference_lip_gap(phones, T: int, fps: float = 25.0) -> np.ndarray:
    """Head-free lip-opening reference (T,) the teacher derives from the alignment (for sync lag).

    Blended viseme jaw angle plus vertical lip channels, zero over bilabial closures; arbitrary
    units (only its shape matters for correlation).
    """
    jaw_v, ch = _articulation(phones, T, fps, 1.0)
    vert = [CH[n] for n in ("mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L",
                            "mouthUpperUp_R")]
    g = jaw_v / JAW_OPEN_FULL_RAD + 0.25 * ch[:, vert].mean(1)
    for ph, s, e in _clean_phones(phones):
        if ph in BILABIALS:
            fr = closure_frames(s, e, fps)
            g[fr[(fr >= 0) & (fr < T)]] = 0.0
    return g.astype(np.float32)


def random_emotion_curve(T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame emotion weights (T, 8) summing to 1 and intensity (T,) in 0..1.

    Half the clips hold one emotion, a third change from one emotion to another with a smooth
    transition (0.3-1.5 s), the rest hold a constant mixture of two.
    """
    n = len(EMOTIONS)
    W = np.zeros((T, n))
    I = np.zeros(T)
    u = rng.uniform()
    a = int(rng.integers(n))
    ia = float(rng.uniform(0.2, 1.0))
    if u < 0.5 or T < 10:
        W[:, a] = 1.0
        I[:] = ia
    elif u < 0.85:
        b = int(rng.integers(n - 1))
        b = b + 1 if b >= a else b
        ib = float(rng.uniform(0.2, 1.0))
        centre = rng.uniform(0.2, 0.8) * T
        width = max(1.0, rng.uniform(0.3, 1.5) * 25.0)
        x = np.clip((np.arange(T) - centre) / width + 0.5, 0, 1)
        f = x * x * (3 - 2 * x)
        W[:, a] = 1 - f
        W[:, b] = f
        I[:] = ia * (1 - f) + ib * f
    else:
        b = int(rng.integers(n - 1))
        b = b + 1 if b >= a else b
        m = float(rng.uniform(0.2, 0.8))
        W[:, a] = m
        W[:, b] = 1 - m
        I[:] = ia
    return W.astype(np.float32), I.astype(np.float32)


def one_emotion_curve(T: int, emotion: str, intensity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Constant single-emotion curve (T, 8), (T,) (evaluation and tests)."""
    W = np.zeros((T, len(EMOTIONS)), dtype=np.float32)
    W[:, EMOTIONS.index(emotion)] = 1.0
    return W, np.full(T, intensity, dtype=np.float32)
