"""Lip gap through FLAME <-> ARKit retargeting (issue 17 part 3): does the mouth still follow?

    python bench/eval_retarget.py [--clips dev|tts-val|synthetic] [--model default|DIR]
                                  [--flame generic_model.pkl]

For each clip the open-head animation (the teacher on the clip's alignment, or the model on its
audio) is carried onto the FLAME head (ARKit -> FLAME), and that FLAME animation back onto the open
head (FLAME -> ARKit). Printed per direction: the correlation of the inner-lip gap of source and
target, with the jaw and with the jaw held shut (the expression map alone), as the median and the
worst clip. Without --flame the synthetic FLAME-format test head (100 expressions) stands in.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

from bench.eval_lipsync import load_clips, model_animator, teacher_animator  # noqa: E402
from emote.model_runtime.heads import retarget  # noqa: E402
from emote.model_runtime.training import metrics  # noqa: E402


def synthetic_clips(n: int = 8) -> list[dict]:
    """Made-up lines (random phone strings with bilabials, rounded and open vowels) and noise."""
    inventory = "M AA P IY B OW UW S AH AE T F AO IH D EY K W ER".split()
    out = []
    for k in range(n):
        rng = np.random.default_rng(100 + k)
        phones, t = [], 0.1
        for ph in rng.choice(inventory, 30):
            d = float(rng.uniform(0.06, 0.2))
            phones.append([str(ph), t, t + d])
            t += d
        out.append({"id": f"synthetic{k}", "audio": rng.normal(0, 0.1, int((t + 0.2) * 16000)),
                    "phones": phones})
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Lip gap through FLAME <-> ARKit retargeting")
    ap.add_argument("--clips", default="synthetic", choices=["dev", "tts-val", "synthetic"])
    ap.add_argument("--model", default=None, help='"default" or a checkpoint (else the teacher)')
    ap.add_argument("--flame", default=None, help="FLAME .pkl (default: the synthetic test head)")
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--limit", type=int, default=60)
    args = ap.parse_args(argv)

    from bench.eval_lipsync import default_head
    from emote.model_runtime.heads.flame_pickle import load_flame

    ark = default_head()
    if args.flame:
        flame = load_flame(args.flame, n_exp=100)
    else:
        from tests.helpers.synthetic_flame import write_synthetic_flame

        path = Path(tempfile.mkdtemp()) / "generic_model.pkl"
        write_synthetic_flame(path, n_exp=100)
        flame = load_flame(path, n_exp=100)
    clips = (synthetic_clips() if args.clips == "synthetic"
             else load_clips(args.clips, args.corpus, args.limit))
    a2f, f2a = retarget.fit_retarget(ark, flame), retarget.fit_retarget(flame, ark)
    animate = model_animator(args.model, None) if args.model else teacher_animator()
    rows: dict[str, list[float]] = {k: [] for k in ("A>F", "A>F shut", "F>A", "F>A shut")}
    for c in clips:
        exp, jaw, _names = (animate(c["audio"]) if args.model
                            else animate(c["audio"], c["phones"]))
        shut = np.zeros_like(jaw)
        for label, j in (("", jaw), (" shut", shut)):
            f_exp, f_jaw = a2f.apply(exp, j)
            g_f = metrics.lip_signals(flame, f_exp, f_jaw)[0]
            rows["A>F" + label].append(_corr(metrics.lip_signals(ark, exp, j)[0], g_f))
            rows["F>A" + label].append(_corr(g_f, metrics.lip_signals(ark, *f2a.apply(f_exp,
                                                                                   f_jaw))[0]))
    source = f"model {args.model}" if args.model else "teacher"
    print(f"clips: {args.clips} ({len(clips)}), animation: {source}, FLAME head: {flame.head_id}"
          f" ({'synthetic' if not args.flame else args.flame})")
    print(f"{'direction':<10} {'median r':>9} {'worst r':>8}")
    for k, v in rows.items():
        print(f"{k:<10} {np.median(v):>9.3f} {np.min(v):>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
