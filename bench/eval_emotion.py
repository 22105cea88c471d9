"""Emotion metrics of /work/shared/METRICS.md: recognition accuracy per emotion at full intensity
and lip-sync content kept under each emotion, on the dev prompts.

    python bench/eval_emotion.py --model default|DIR [--teacher] [--clips dev|tts-val]

The recogniser is trained for evaluation only (data/eval_emotion_clf/, cached): on teacher
sequences of the TTS corpus's held-out voices with seed 9001, so it shares neither seed nor data
split with the training-loss classifier (model_runtime/training/emotion_classifier.py, whose
network class it reuses).
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

from emote.model_runtime.training import metrics, teacher  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_lipsync as LS  # noqa: E402

EVAL_SEED = 9001
N_VERTS = 96


def face_vertices(head) -> np.ndarray:
    """About N_VERTS vertices that expressions move (evenly spread by index), plus the landmarks."""
    mag = np.linalg.norm(head.exp_dirs, axis=(1, 2)) + np.linalg.norm(
        head.lbs_weights[:, head.jaw_index:head.jaw_index + 1], axis=1)
    moving = np.flatnonzero(mag > 1e-6)
    pick = moving[np.linspace(0, len(moving) - 1, min(N_VERTS, len(moving))).astype(int)]
    return np.unique(np.concatenate([pick, head.landmark_vertices]))


def offsets(sub, exp, jaw) -> np.ndarray:
    from emote.model_runtime.heads.head_model import evaluate

    return (evaluate(sub, exp, jaw) - sub.v_template[None]).astype(np.float32)


def _training_sequences(sub, head, corpus: str, n: int, rng) -> list[tuple[np.ndarray, int]]:
    """Teacher sequences (offsets, emotion) of held-out voices, one random emotion each."""
    from emote.model_runtime.audio import load_audio
    from emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS
    from emote.model_runtime.training.corpus import read_manifest

    recs = read_manifest(corpus, split="val")
    if not recs:
        raise SystemExit(f"no validation utterances in {corpus}; build the corpus first")
    out = []
    for k in range(n):
        r = recs[int(rng.integers(len(recs)))]
        audio = load_audio(r["wav_path"])
        T = len(audio) // 640
        e = int(rng.integers(len(teacher.EMOTIONS)))
        W, I = teacher.one_emotion_curve(T, teacher.EMOTIONS[e], float(rng.uniform(0.5, 1.0)))
        style = teacher.STYLES[int(rng.integers(len(teacher.STYLES)))]
        exp, jaw = teacher.teacher_animation(r["phones"], audio, W, I, style, rng)
        exp = LS.to_head_order(exp, list(OPEN_HEAD_CHANNELS), head)
        out.append((offsets(sub, exp, jaw), e))
    return out


def _batch(seqs, rng, crop=(40, 100), size: int = 16):
    import torch

    L = int(rng.integers(crop[0], crop[1] + 1))
    idx = rng.integers(len(seqs), size=size)
    X = np.zeros((size, L) + seqs[0][0].shape[1:], np.float32)
    M = np.zeros((size, L), np.float32)
    y = np.zeros(size, np.int64)
    for b, i in enumerate(idx):
        x, e = seqs[i]
        s = int(rng.integers(0, max(1, len(x) - L + 1)))
        seg = x[s:s + L]
        X[b, :len(seg)] = seg
        M[b, :len(seg)] = 1
        y[b] = e
    return torch.from_numpy(X), torch.from_numpy(M), torch.from_numpy(y)


def eval_classifier(head, corpus: str, cache: Path, n_seq: int = 240, steps: int = 300):
    """The evaluation-only recogniser: loaded from `cache` or trained and stored there."""
    import torch
    from safetensors.torch import load_file, save_file

    from emote.model_runtime.training.emotion_classifier import EmotionClassifier

    sub = metrics.subset_head(head, face_vertices(head))
    clf = EmotionClassifier(in_dim=sub.num_vertices * 3)
    wfile, meta = cache / "model.safetensors", cache / "meta.json"
    # A head rebuilt under the same id (e.g. stronger shapes), another teacher (it makes the
    # recogniser's training sequences) or another corpus needs a new recogniser.
    shape = hashlib.sha256(np.ascontiguousarray(head.v_template).tobytes()
                           + np.ascontiguousarray(head.exp_dirs).tobytes()).hexdigest()
    taught = hashlib.sha256(Path(teacher.__file__).read_bytes()).hexdigest()
    known = json.loads(meta.read_text()) if wfile.is_file() and meta.is_file() else {}
    if (known.get("head_id"), known.get("head_sha256"), known.get("teacher_sha256"),
            known.get("corpus")) == (head.head_id, shape, taught, corpus):
        clf.load_state_dict(load_file(str(wfile)))
        clf.eval()
        return clf, sub
    torch.manual_seed(EVAL_SEED)
    rng = np.random.default_rng(EVAL_SEED)
    t0 = time.time()
    seqs = _training_sequences(sub, head, corpus, n_seq, rng)
    held = seqs[: n_seq // 8]
    train = seqs[n_seq // 8:]
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    for step in range(steps):
        X, M, y = _batch(train, rng)
        loss = torch.nn.functional.cross_entropy(clf(X, M), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    clf.eval()
    with torch.no_grad():
        acc = float(np.mean([int(clf(torch.from_numpy(x)[None]).argmax()) == e for x, e in held]))
    cache.mkdir(parents=True, exist_ok=True)
    save_file(clf.state_dict(), str(wfile))
    meta.write_text(json.dumps({"head_id": head.head_id, "head_sha256": shape,
                                "teacher_sha256": taught,
                                "seed": EVAL_SEED, "sequences": n_seq,
                                "steps": steps, "held_out_accuracy": acc, "corpus": corpus,
                                "split": "val voices", "train_s": round(time.time() - t0, 1)}))
    print(f"evaluation classifier: held-out teacher accuracy {acc:.3f} "
          f"({time.time() - t0:.0f} s to train)")
    return clf, sub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Emotion metrics (METRICS.md)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--teacher", action="store_true")
    ap.add_argument("--clips", default="dev", choices=["dev", "tts-val"])
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--head", default=None)
    ap.add_argument("--identity", default=None)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--cache", default="data/eval_emotion_clf")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not args.model and not args.teacher:
        ap.error("give --model default|DIR and/or --teacher")
    import torch

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    from emote.model_runtime.heads.head_model import load_head

    head = load_head(args.head) if args.head else LS.default_head()
    clf, sub = eval_classifier(head, args.corpus, Path(args.cache))
    clips = LS.load_clips(args.clips, args.corpus, args.limit)
    lh = metrics.landmark_head(head)
    runs = []
    if args.teacher:
        runs.append(("teacher", LS.teacher_animator(), True))
    if args.model:
        runs.append((f"model:{Path(args.model).name}", LS.model_animator(args.model, args.identity),
                     False))
    report = {}
    for name, animate, use_phones in runs:
        rows, acc, read_as = {}, {}, {}
        for emo in teacher.EMOTIONS:
            per, preds = [], Counter()
            for c in clips:
                args_ = (c["audio"], c["phones"]) if use_phones else (c["audio"],)
                exp, jaw, names = animate(*args_, emotion=emo, intensity=1.0)
                exp = LS.to_head_order(exp, names, head)
                with torch.no_grad():
                    pred = int(clf(torch.from_numpy(offsets(sub, exp, jaw))[None]).argmax())
                preds[teacher.EMOTIONS[pred]] += 1
                g, w = metrics.lip_signals(lh, exp, jaw)
                per.append(metrics.clip_metrics(g, w, c["phones"], LS.FPS))
            acc[emo] = preds[emo] / max(1, len(clips))
            rows[emo] = metrics.pool(per)
            read_as[emo] = dict(preds.most_common())
        print(f"\n{name}: {len(clips)} {args.clips} clips, every emotion at intensity 1")
        print(f"{'emotion':<11}{'accuracy':>9}{'closure':>9}{'false':>8}  most often read as")
        for emo in teacher.EMOTIONS:
            m = rows[emo]
            other = [f"{k} {v}" for k, v in read_as[emo].items() if k != emo][:2]
            print(f"{emo:<11}{acc[emo]:>9.3f}{m['closure_recall']:>9.3f}"
                  f"{m['false_closure_rate']:>8.3f}  {', '.join(other)}")
        print(f"{'mean':<11}{np.mean(list(acc.values())):>9.3f}")
        report[name] = {"accuracy": acc, "lipsync": rows, "read_as": read_as}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
