"""Lip-sync figures of /work/shared/METRICS.md on real speech (dev set), held-out game speakers
or held-out TTS voices.

    python bench/eval_lipsync.py --model default|DIR [--clips dev|heldout|tts-val] [--teacher]
        [--corpus DIR] [--band full,tel8k] [--json OUT]

Runs the model at 25 fps with neutral emotion, evaluates the landmarks of the head it drives
(the open head unless --head), and prints closure recall, false closure rate, rounding and sync
lag pooled over the clips. --teacher scores the teacher animation on the same clips' alignments.

`--clips heldout` scores the game speakers held out of training (whole characters, listed in
model_runtime/training/heldout_clips.txt; audio from the game corpus at --corpus, default
/work/data/queen_corpus) at full band and band-limited to 8 kHz telephone quality (300-3400 Hz,
8 kHz sampling: augment.telephone) side by side, and adds two absolute figures (issue 14 part 5,
defined in model_runtime/training/metrics.py): `seal`, the median lip gap in mm at the centre of
bilabials (the minimum over the central 60% that closure recall uses; target <= 1 mm), and
`open`, the median lip gap in mm at the middle frame of open vowels (target >= 9 mm).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "devpath"))

from emote.model_runtime.training import metrics, teacher  # noqa: E402

FPS = 25.0


GAME_CORPUS = "/work/data/queen_corpus"
BANDS = ("full", "tel8k")


def heldout_clips(corpus: str, limit: int | None = None) -> list[dict]:
    """[{id, audio, phones, speaker}] of the held-out game speakers, in id order.

    Only clips whose (conversation-reconciled) speaker is a held-out character are scored; the
    other clips that the list keeps out of training (a stray line in a held-out character's
    conversation) are not, as their speaker is uncertain. A corpus without them is an error that
    says how to build it.
    """
    from emote.model_runtime.audio import load_audio
    from emote.model_runtime.training import speaker_split
    from emote.model_runtime.training.corpus import read_manifest

    man = Path(corpus) / "manifest.jsonl"
    if not man.is_file():
        raise SystemExit(f"no game corpus at {corpus}: build it with nice -n 10 python -m "
                         "model_runtime.training.game_corpus --out " + str(corpus))
    recs = [r for r in speaker_split.reconcile(read_manifest(corpus))
            if speaker_split.split_of(r) == speaker_split.HELDOUT
            and r.get("speaker") in speaker_split.load_heldout()[0]]
    if not recs:
        raise SystemExit(f"{corpus} holds no clip of the held-out speakers "
                         f"({speaker_split.HELDOUT_FILE})")
    recs = sorted(recs, key=lambda r: r["id"])[:limit]
    return [{"id": r["id"], "audio": load_audio(r["wav_path"]), "phones": r["phones"],
             "speaker": r.get("speaker", "")} for r in recs]


def band_limited(clips: list[dict], band: str) -> list[dict]:
    """The clips as heard through `band`: "full" as recorded, "tel8k" telephone (8 kHz)."""
    if band == "full":
        return clips
    if band != "tel8k":
        raise ValueError(f"unknown band {band!r}; choose from {', '.join(BANDS)}")
    from emote.model_runtime.training.augment import telephone

    return [{**c, "audio": telephone(c["audio"])} for c in clips]


def load_clips(which: str, corpus: str, limit: int) -> list[dict]:
    """[{id, audio, phones}] for the dev prompts (aligned, cached), the held-out game speakers or
    the TTS validation voices."""
    if which == "dev":
        from emote.model_runtime.training.align import dev_set

        return dev_set()[:limit]
    if which == "heldout":
        return heldout_clips(corpus, limit)
    from emote.model_runtime.audio import load_audio
    from emote.model_runtime.training.corpus import read_manifest

    recs = sorted(read_manifest(corpus, split="val"), key=lambda r: r["id"])[:limit]
    return [{"id": r["id"], "audio": load_audio(r["wav_path"]), "phones": r["phones"]} for r in recs]


def default_head():
    from emote.model_runtime.heads.head_model import load_head
    from emote.model_runtime.heads.open_head import default_head_path

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

    from emote.model_runtime.conditions import build_condition_track, identity_index
    from emote.model_runtime.inference import get_model, predict

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
    from emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS

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
    ap.add_argument("--clips", default="dev", choices=["dev", "heldout", "tts-val"])
    ap.add_argument("--teacher", action="store_true", help="score the teacher on the alignments")
    ap.add_argument("--corpus", default=None,
                    help=f"corpus folder (tts-val: data/corpus; heldout: {GAME_CORPUS})")
    ap.add_argument("--band", default=None,
                    help="comma list of full,tel8k (default: both for heldout, full otherwise)")
    ap.add_argument("--head", default=None, help="head .npz (default: the open head)")
    ap.add_argument("--identity", default=None, help="speaking style name of the checkpoint")
    ap.add_argument("--limit", type=int, default=None,
                    help="at most N clips (default 60; all for heldout)")
    ap.add_argument("--json", default=None, help="also write pooled and per-clip figures here")
    args = ap.parse_args(argv)
    if not args.model and not args.teacher:
        ap.error("give --model default|DIR and/or --teacher")
    corpus = args.corpus or (GAME_CORPUS if args.clips == "heldout" else "data/corpus")
    limit = args.limit if args.limit is not None else (None if args.clips == "heldout" else 60)
    bands = (args.band or ("full,tel8k" if args.clips == "heldout" else "full")).split(",")
    for b in bands:
        if b not in BANDS:
            ap.error(f"--band {b!r}: choose from {', '.join(BANDS)}")

    from emote.model_runtime.heads.head_model import load_head

    head = load_head(args.head) if args.head else default_head()
    clips = load_clips(args.clips, corpus, limit)
    rows, report = {}, {"clips": args.clips, "n_clips": len(clips), "head": head.head_id,
                        "bands": bands}
    if args.clips == "heldout":
        report["speakers"] = sorted({c["speaker"] for c in clips})
    animator = model_animator(args.model, args.identity) if args.model else None
    for band in bands:
        tag = "" if bands == ["full"] else f"@{band}"
        heard = band_limited(clips, band)
        if args.teacher and band == bands[0]:  # the teacher reads the alignment, not the audio
            pooled, per = score_clips(clips, teacher_animator(), head, use_phones=True)
            rows["teacher"] = pooled
            report["teacher"] = {"pooled": pooled, "per_clip": per}
        if animator is not None:
            pooled, per = score_clips(heard, animator, head, use_phones=False)
            rows[f"model:{Path(args.model).name}{tag}"] = pooled
            report[f"model{tag}"] = {"spec": args.model, "band": band, "pooled": pooled,
                                     "per_clip": per}
    print(f"clips: {args.clips} ({len(clips)}), head: {head.head_id}")
    if args.clips == "heldout":
        print(f"held-out speakers: {', '.join(report['speakers'])}")
    print(metrics.format_table(rows, mm=True))
    print(f"seal/open: median lip gap in mm at bilabial centres (target <= "
          f"{metrics.SEAL_TARGET_MM:g}) and open-vowel centres (target >= "
          f"{metrics.OPEN_TARGET_MM:g})")
    for name, m in rows.items():
        parts = [f"{ph} {v['rate']:.3f} (n={v['n']})" for ph, v in m["rounding_by_phone"].items()]
        print(f"rounding by phone, {name}: {', '.join(parts) or '-'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
