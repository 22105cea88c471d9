"""Lip-sync metrics of /work/shared/METRICS.md in numpy: lip gap and mouth width from head
landmarks, bilabial closure recall, false closure rate, rounding, sync lag, pooled over clips.

Frame k covers [k/fps, (k+1)/fps); a phone's middle frame is the frame holding its midpoint.

Absolute seal and opening (issue 14 part 5, beside METRICS.md's relative scores, so a mouth that
hovers half open cannot pass): the **seal gap** is the median, over the bilabials that closure
recall counts, of the minimum lip gap g over the phone's central 60% (the very frames closure
recall looks at), in mm (target <= SEAL_TARGET_MM: the lips touch); the **open gap** is the
median of g at the middle frame of the open vowels that the false closure rate counts, in mm
(target >= OPEN_TARGET_MM).
"""

from __future__ import annotations

import numpy as np

from .teacher import closure_frames, frame_of_time

OPEN_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW",
                         "OY", "UH", "UW"})
BILABIALS = frozenset({"P", "B", "M"})
ROUNDED_TARGETS = frozenset({"UW", "OW", "W"})
UNROUNDED_VOWELS = frozenset({"AA", "AE", "AH", "AY", "EH", "ER", "EY", "IH", "IY"})
MIN_VOWEL_S = 0.060
MIN_BILABIAL_S = 0.040
CLOSURE_FRACTION = 0.25
ROUND_FRACTION = 0.95
MAX_LAG = 5
SEAL_TARGET_MM = 1.0
OPEN_TARGET_MM = 9.0
_EPS = 1e-6


def landmark_head(head):
    """A copy of the head reduced to its landmark vertices (fast evaluation for metrics)."""
    return subset_head(head, np.asarray(head.landmark_vertices, dtype=np.int64), "-landmarks")


def subset_head(head, idx: np.ndarray, suffix: str = "-subset"):
    """The head restricted to vertices `idx` (its landmarks renumbered where they survive)."""
    from ..heads.head_model import HeadModel

    idx = np.asarray(idx, dtype=np.int64)
    where = {int(v): i for i, v in enumerate(idx)}
    lm = [(n, where[int(v)]) for n, v in zip(head.landmark_names, head.landmark_vertices)
          if int(v) in where]
    return HeadModel(
        head_id=head.head_id + suffix, v_template=head.v_template[idx],
        faces=np.zeros((0, 3), np.int32), exp_names=list(head.exp_names),
        exp_dirs=head.exp_dirs[idx], joint_names=list(head.joint_names), joints=head.joints,
        parents=head.parents, lbs_weights=head.lbs_weights[idx],
        landmark_names=[n for n, _ in lm], landmark_vertices=np.array([i for _, i in lm], np.int64),
        pose_dirs=None if head.pose_dirs is None else head.pose_dirs[idx])


def lip_signals(head, exp: np.ndarray, jaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lip gap g(t) and mouth width w(t) in mm for an animation (T, E), (T, 3) on `head`."""
    from ..heads.head_model import evaluate

    lh = head if head.head_id.endswith("-landmarks") else landmark_head(head)
    v = evaluate(lh, exp, jaw)
    return signals_from_vertices(v, lh)


def signals_from_vertices(verts: np.ndarray, head) -> tuple[np.ndarray, np.ndarray]:
    """g(t), w(t) in mm from evaluated vertices (T, V, 3) of `head` (metres)."""
    def lm(name):
        return verts[:, head.landmark(name)]

    g = np.linalg.norm(lm("lip_upper_inner") - lm("lip_lower_inner"), axis=-1) * 1000.0
    w = np.linalg.norm(lm("mouth_corner_left") - lm("mouth_corner_right"), axis=-1) * 1000.0
    return g.astype(np.float64), w.astype(np.float64)


def _mid_frame(s: float, e: float, T: int, fps: float) -> int:
    return int(np.clip(frame_of_time(0.5 * (s + e), fps), 0, T - 1))


def _phones(phones):
    return [(str(p[0]).upper().rstrip("012"), float(p[1]), float(p[2])) for p in phones]


def clip_metrics(gap: np.ndarray, width: np.ndarray | None, phones, fps: float = 25.0,
                 ref_gap: np.ndarray | None = None) -> dict:
    """Counts for one clip (pool them with `pool`): closure, false closure, rounding, sync lag."""
    gap = np.asarray(gap, dtype=np.float64)
    T = len(gap)
    ph = [p for p in _phones(phones) if p[1] * fps < T]
    vowel_mids = [_mid_frame(s, e, T, fps) for p, s, e in ph
                  if p in OPEN_VOWELS and e - s >= MIN_VOWEL_S - _EPS]
    out = {"closure_hits": 0, "closure_n": 0, "false_hits": 0, "false_n": 0, "round_hits": 0,
           "round_n": 0, "g_open": float("nan"), "tau": float("nan"), "lag": None,
           "corr0": float("nan"), "seal_gaps_mm": [], "open_gaps_mm": [],
           "round_by_phone": {}}
    if vowel_mids:
        g_open = float(np.median(gap[vowel_mids]))
        tau = CLOSURE_FRACTION * g_open
        out.update(g_open=g_open, tau=tau)
        for p, s, e in ph:
            if p in BILABIALS and e - s >= MIN_BILABIAL_S - _EPS:
                fr = closure_frames(s, e, fps)
                fr = fr[(fr >= 0) & (fr < T)]
                if fr.size == 0:
                    continue
                out["closure_n"] += 1
                out["closure_hits"] += int(gap[fr].min() <= tau)
                out["seal_gaps_mm"].append(round(float(gap[fr].min()), 3))
        out["false_n"] = len(vowel_mids)
        out["open_gaps_mm"] = [round(float(x), 3) for x in gap[vowel_mids]]
        out["false_hits"] = int(np.sum(gap[vowel_mids] <= tau))
    if width is not None:
        width = np.asarray(width, dtype=np.float64)
        ref_mids = [_mid_frame(s, e, T, fps) for p, s, e in ph
                    if p in UNROUNDED_VOWELS and e - s >= MIN_VOWEL_S - _EPS]
        if ref_mids:
            w_ref = float(np.median(width[ref_mids]))
            for p, s, e in ph:
                if p in ROUNDED_TARGETS and e - s >= MIN_VOWEL_S - _EPS:
                    counts = out["round_by_phone"].setdefault(p, [0, 0])
                    counts[0] += int(width[_mid_frame(s, e, T, fps)] <= ROUND_FRACTION * w_ref)
                    counts[1] += 1
            # the clip's totals are the sums of its per-phone counts
            out["round_hits"] = sum(h for h, _ in out["round_by_phone"].values())
            out["round_n"] = sum(n for _, n in out["round_by_phone"].values())
    if ref_gap is not None:
        lag, corrs = sync_lag(gap, np.asarray(ref_gap, dtype=np.float64)[:T])
        out["lag"] = lag
        out["corr0"] = corrs.get(0, float("nan"))
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def sync_lag(gap: np.ndarray, ref: np.ndarray, max_lag: int = MAX_LAG) -> tuple[int | None, dict]:
    """Lag in frames (within +-max_lag) maximising corr(g(t), ref(t - lag)): positive = late."""
    n = min(len(gap), len(ref))
    g, r = gap[:n], ref[:n]
    corrs = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            c = _corr(g[lag:], r[: n - lag])
        else:
            c = _corr(g[: n + lag], r[-lag:])
        corrs[lag] = c
    valid = {k: v for k, v in corrs.items() if np.isfinite(v)}
    if not valid:
        return None, corrs
    best = max(valid.values())
    return min((k for k, v in valid.items() if v == best), key=abs), corrs


def pool(clips: list[dict]) -> dict:
    """Pooled figures over all segments of a set (rates are sums of hits over sums of counts)."""
    def rate(h, n):
        tn = sum(c[n] for c in clips)
        return (sum(c[h] for c in clips) / tn if tn else float("nan")), tn

    rec, n_c = rate("closure_hits", "closure_n")
    fal, n_v = rate("false_hits", "false_n")
    rnd, n_r = rate("round_hits", "round_n")
    seal = [x for c in clips for x in c.get("seal_gaps_mm", [])]
    opened = [x for c in clips for x in c.get("open_gaps_mm", [])]
    lags = [c["lag"] for c in clips if c.get("lag") is not None]
    c0 = [c["corr0"] for c in clips if np.isfinite(c.get("corr0", np.nan))]
    by_phone: dict[str, list[int]] = {}
    for c in clips:
        for ph, (h, n) in c.get("round_by_phone", {}).items():
            tot = by_phone.setdefault(ph, [0, 0])
            tot[0] += h
            tot[1] += n
    return {"closure_recall": rec, "n_bilabials": n_c, "false_closure_rate": fal,
            "n_open_vowels": n_v, "rounding": rnd, "n_rounded": n_r,
            "lag_median": float(np.median(lags)) if lags else float("nan"),
            "corr0_median": float(np.median(c0)) if c0 else float("nan"), "n_clips": len(clips),
            "seal_gap_mm": float(np.median(seal)) if seal else float("nan"),
            "open_gap_mm": float(np.median(opened)) if opened else float("nan"),
            # rounding per target phone (UW, OW, W): which of them the mouth misses
            "rounding_by_phone": {ph: {"rate": h / n, "n": n}
                                  for ph, (h, n) in sorted(by_phone.items())}}


def format_table(rows: dict[str, dict], mm: bool = False) -> str:
    """A plain-text table of pooled figures, one row per name (`mm`: add the seal and open gaps
    in millimetres)."""
    head = (f"{'set':<22}{'clips':>6}{'closure':>9}{'(n)':>6}{'false':>8}{'(n)':>6}"
            f"{'round':>8}{'(n)':>5}{'lag':>6}{'corr0':>7}"
            + (f"{'seal':>7}{'open':>7}" if mm else ""))
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        lines.append(f"{name:<22}{m['n_clips']:>6}{m['closure_recall']:>9.3f}{m['n_bilabials']:>6}"
                     f"{m['false_closure_rate']:>8.3f}{m['n_open_vowels']:>6}{m['rounding']:>8.3f}"
                     f"{m['n_rounded']:>5}{m['lag_median']:>6.1f}{m['corr0_median']:>7.2f}"
                     + (f"{m['seal_gap_mm']:>7.2f}{m['open_gap_mm']:>7.2f}" if mm else ""))
    return "\n".join(lines)
