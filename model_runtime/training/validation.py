"""Quick lip-sync proxy on the val split: bilabial closure recall and false closures (METRICS.md).

Runs the talking head on whole val utterances under the neutral variant's condition and applies
the METRICS.md definitions to the lip gap of the open head; the teacher's own targets give the
ceiling next to it.
"""

from __future__ import annotations

import numpy as np
import torch

from .dataset import condition_rows
from .feature_cache import Cache
from .phones import BILABIALS, OPEN_VOWELS, PHONE_CLASSES


def _frame(t: float, fps: float) -> int:
    return int(np.floor(t * fps + 1e-9))


def closure_scores(gap: np.ndarray, segments: list[tuple[str, float, float]],
                   fps: float = 25.0) -> tuple[int, int, int, int]:
    """(bilabials closed, bilabials, open vowels closed, open vowels) for one clip's gap (T,)."""
    T = len(gap)
    mids = [gap[min(_frame((s + e) / 2, fps), T - 1)] for p, s, e in segments
            if p in OPEN_VOWELS and e - s >= 0.06]
    if not mids:
        return 0, 0, 0, 0
    tau = 0.25 * float(np.median(mids))
    closed = n_bil = 0
    for p, s, e in segments:
        if p in BILABIALS and e - s >= 0.04:
            d = e - s
            a, b = _frame(s + 0.2 * d, fps), _frame(e - 0.2 * d - 1e-6, fps)
            fr = np.arange(a, max(a, b) + 1)
            fr = fr[(fr >= 0) & (fr < T)]
            if fr.size:
                n_bil += 1
                closed += int(gap[fr].min() <= tau)
    false = sum(int(g <= tau) for g in mids)
    return closed, n_bil, false, len(mids)


def lip_sync_proxy(model, views, cache: Cache, indices, device: str = "cpu",
                   max_utterances: int = 40) -> dict:
    """Pooled closure recall / false-closure rate of the model and of the teacher on val clips."""
    tot = np.zeros((2, 4))
    fps = float(cache.meta["fps"])
    was_training = model.training
    model.eval()
    for n in list(indices)[:max_utterances]:
        T = int(cache.frames[n])
        o, fo = int(cache.frame_offsets[n]), cache.feat_offset(n)
        feat = torch.from_numpy(cache.feat[fo: fo + cache.ratio * T + 1].astype(np.float32))
        cond = condition_rows(cache.emotion[0, o:o + T].astype(np.float32),
                              cache.intensity[0, o:o + T].astype(np.float32),
                              int(cache.style[0, n]), len(cache.meta["styles"]))
        with torch.no_grad():
            out = model.forward_features(feat[None].to(device),
                                         torch.from_numpy(cond)[None].to(device))[0]
            E = out.shape[-1] - 3
            g_pred = views.lip_gap_mm(views(out[:, :E], out[:, E:])).cpu().numpy()
            ref_exp = torch.from_numpy(cache.exp[0, o:o + T].astype(np.float32)).to(device)
            ref_jaw = torch.from_numpy(cache.jaw[0, o:o + T].astype(np.float32)).to(device)
            g_ref = views.lip_gap_mm(views(ref_exp, ref_jaw)).cpu().numpy()
        s0, s1 = int(cache.seg_offsets[n]), int(cache.seg_offsets[n + 1])
        segs = [(PHONE_CLASSES[int(c)], float(t[0]), float(t[1]))
                for c, t in zip(cache.seg_class[s0:s1], cache.seg_times[s0:s1])]
        tot[0] += closure_scores(g_pred, segs, fps)
        tot[1] += closure_scores(g_ref, segs, fps)
    model.train(was_training)
    div = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    return {"closure_recall": div(tot[0, 0], tot[0, 1]), "false_closure": div(tot[0, 2], tot[0, 3]),
            "teacher_closure_recall": div(tot[1, 0], tot[1, 1]),
            "teacher_false_closure": div(tot[1, 2], tot[1, 3]), "bilabials": float(tot[0, 1])}
