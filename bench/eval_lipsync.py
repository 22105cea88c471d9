"""Lip-sync figures of /work/shared/METRICS.md on real speech (dev set) or held-out TTS voices.

    python bench/eval_lipsync.py --model default|DIR [--clips dev|tts-val] [--teacher]

Runs the model at 25 fps with neutral emotion, evaluates the landmarks of the head it drives
(the open head unless --head), and prints closure recall, false closure rate, rounding and sync
lag pooled over the clips. --teacher scores the teacher animation on the same clips' alignments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_runtime.training import metrics, teacher  # noqa: E402

FPS = 25.0


def load_clips(which: str, corpus: str, limit: int) -> list[dict]:
    """[{id, audio, phones}] for the dev prompts (aligned, cached) or the TTS validation voices."""
    if which == "dev":
        from model_runtime.training.align import dev_set

        return dev_set()[:limit]
    from model_runtime.audio import load_audio
    from model_runtime.training.corpus import read_manifest

    recs = sorted(read_manifest(corpus, split="val"), key=lambda r: r["id"])[:limit]
    return [{"id": r["id"], "audio": load_audio(r["wav_path"]), "phones": r["phones"]} for r in recs]


def default_head():
    from model_runtime.heads.head_model import load_head
    from model_runtime.heads.open_head import default_head_path

    return load_head(default_head_path())


def to_head_order(exp: np.ndarray, names: list[str], head) -> np.ndarray:
    """Expression columns reordered (by name) into the head's channels; missing ones stay 0."""
    out = np.zeros((exp.shape[0], len(head.exp_names)), np.float32)
    idx = {n: i for i, n in enumerate(names)}
    for j, n in enumerate(head.exp_names):
        if n in idx:
            out[:, j] = exp[:, idx[n]]
    return out


def model_animator(spec: str, identity: str | None):
    """A function audio -> (exp (T, E), jaw (T, 3), exp_names) running the checkpoint at 25 fps."""
    import torch

    from model_runtime.conditions import build_condition_track, identity_index
    from model_runtime.inference import get_model, predict

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    model, config, _ = get_model(spec)
    ids = list(config.get("conditions", {}).get("identities", ["default"]))
    ident = identity_index(identity, ids) if identity else 0
    names = [str(n) for n in config["output"]["exp_names"]]
    model_fps = float(config.get("fps", 25))

    def run(audio: np.ndarray, emotion: str = "neutral", intensity: float = 1.0):
        T = int(len(audio) // round(16000 / model_fps))
        cond = build_condition_track([emotion], [[1.0]], [intensity], model_fps, model_fps, T,
                                     ident, len(ids))
        pred = predict(model, config, audio, cond)
        return pred[:, : len(names)], pred[:, len(names):], names

    return run


def teacher_animator(style: str = "neutral", seed: int = 0):
    """A function (audio, phones) -> teacher (exp, jaw, names) with neutral emotion."""
    from model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

    def run(audio: np.ndarray, phones, emotion: str = "neutral", intensity: float = 1.0):
        T = len(audio) // 640
        W, I = teacher.one_emotion_curve(T, emotion, intensity)
        exp, jaw = teacher.teacher_animation(phones, audio, W, I, style,
                                             np.random.default_rng(seed))
        return exp, jaw, list(OPEN_HEAD_CHANNELS)

    return run


def score_clips(clips: list[dict], animate, head, use_phones: bool) -> tuple[dict, list[dict]]:
    """Per-clip metric counts and their pooled figures."""
    lh = metrics.landmark_head(head)
    per = []
    for c in clips:
        exp, jaw, names = animate(c["audio"], c["phones"]) if use_phones else animate(c["audio"])
        g, w = metrics.lip_signals(lh, to_head_order(exp, names, head), jaw)
        ref = teacher.reference_lip_gap(c["phones"], len(g), FPS)
        m = metrics.clip_metrics(g, w, c["phones"], FPS, ref_gap=ref)
        m["id"] = c["id"]
        per.append(m)
    return metrics.pool(per), per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Lip-sync metrics (METRICS.md)")
    ap.add_argument("--model", default=None, help='"default" or a checkpoint folder')
    ap.add_argument("--clips", default="dev", choices=["dev", "tts-val"])
    ap.add_argument("--teacher", action="store_true", help="score the teacher on the alignments")
    ap.add_argument("--corpus", default="data/corpus", help="corpus folder for --clips tts-val")
    ap.add_argument("--head", default=None, help="head .npz (default: the open head)")
    ap.add_argument("--identity", default=None, help="speaking style name of the checkpoint")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--json", default=None, help="also write pooled and per-clip figures here")
    args = ap.parse_args(argv)
    if not args.model and not args.teacher:
        ap.error("give --model default|DIR and/or --teacher")

    from model_runtime.heads.head_model import load_head

    head = load_head(args.head) if args.head else default_head()
    clips = load_clips(args.clips, args.corpus, args.limit)
    rows, report = {}, {"clips": args.clips, "n_clips": len(clips), "head": head.head_id}
    if args.teacher:
        pooled, per = score_clips(clips, teacher_animator(), head, use_phones=True)
        rows["teacher"] = pooled
        report["teacher"] = {"pooled": pooled, "per_clip": per}
    if args.model:
        pooled, per = score_clips(clips, model_animator(args.model, args.identity), head,
                                  use_phones=False)
        rows[f"model:{Path(args.model).name}"] = pooled
        report["model"] = {"spec": args.model, "pooled": pooled, "per_clip": per}
    print(f"clips: {args.clips} ({len(clips)}), head: {head.head_id}")
    print(metrics.format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
