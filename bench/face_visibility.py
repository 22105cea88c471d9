"""How visible the face's animation is (issue 16 part 1): emotion pixel visibility at 512 px and the
jaw opening at open-vowel centres, for the model or the procedural teacher.

    python bench/face_visibility.py --model default|DIR | --teacher [--head HEAD.npz]
        [--vis-clips 2] [--frames 4] [--limit 30] [--gains 1.5,2,3] [--offset-gains 1.5,2,3]
        [--out DIR] [--json OUT]

1. **Emotion pixel visibility.** For each emotion the same speech (the first --vis-clips dev
   clips) is animated at intensity 1 with that emotion and with neutral: same speaking style,
   same seed, no face life (the network's or teacher's output alone: no blinks, gaze or head
   motion), so only the expression differs. At --frames evenly spaced frames of each clip the
   head (the open head unless --head) is evaluated and rendered front view, 512 x 512, with
   Blender's Workbench engine (the set-up of scripts/preview_open_head.py). A pixel is changed
   when any channel differs by more than CHANGE_THRESHOLD (8/255). The issue's figure is the
   changed share of ALL pixels of the 512 px frame (target >= 3%); the share of the head's
   pixels (those not of the background colour in either render) is printed beside it.
2. **Jaw opening.** On the dev clips' alignments (bench/eval_lipsync.py, METRICS.md's phone sets
   and minimum durations), the distribution of the jawOpen channel and the jaw rotation in
   degrees at the middle frame of open vowels, and at bilabial centres for contrast.
3. **--gains** (teacher only, an experiment; the shipped teacher is unchanged): the teacher's
   emotion patterns (teacher.EMOTION_PATTERNS) scaled by each gain in this process, rendered
   the same way, to find the gain per emotion that reaches the 3% target (channels stay clipped
   to [0, 1] as in the teacher). **--offset-gains** (model or teacher) instead scales each
   emotion take's difference from the neutral take, channels and jaw, unclipped: how much larger
   the expression would have to be on this head, beyond what channels capped at 1 reach.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "devpath"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from emote.model_runtime.emotions import EMOTIONS  # noqa: E402
from emote.model_runtime.training import metrics  # noqa: E402

SIZE = 512
CHANGE_THRESHOLD = 8.0 / 255.0
VISIBLE_TARGET = 0.03
JAW_OPEN_LEVEL = 0.3
FPS = 25.0


# ---------------------------------------------------------------- pure figures (tested)

def changed_mask(a: np.ndarray, b: np.ndarray, threshold: float = CHANGE_THRESHOLD) -> np.ndarray:
    """(H, W) bool: pixels where any channel of images a and b (H, W, C) in [0, 1] differs by
    more than `threshold`."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return np.any(np.abs(a - b) > threshold, axis=-1)


def changed_share(a: np.ndarray, b: np.ndarray, threshold: float = CHANGE_THRESHOLD,
                  region: np.ndarray | None = None) -> float:
    """Share of pixels changed between a and b: of all pixels, or of the pixels in `region`
    ((H, W) bool; an empty region gives 0)."""
    ch = changed_mask(a, b, threshold)
    if region is None:
        return float(ch.mean())
    region = np.asarray(region, bool)
    n = int(region.sum())
    return float((ch & region).sum() / n) if n else 0.0


def foreground(img: np.ndarray, background: np.ndarray,
               threshold: float = CHANGE_THRESHOLD) -> np.ndarray:
    """(H, W) bool: pixels not of the background colour (C,)."""
    return changed_mask(img, np.broadcast_to(np.asarray(background, np.float64), img.shape),
                        threshold)


def phone_centre_frames(phones, T: int, kinds: frozenset, min_s: float,
                        fps: float = FPS) -> list[int]:
    """Middle frames (as metrics.clip_metrics picks them) of the phones in `kinds` lasting at
    least `min_s` seconds, within T frames."""
    out = []
    for p, s, e in metrics._phones(phones):
        if p in kinds and e - s >= min_s - 1e-6 and s * fps < T:
            out.append(metrics._mid_frame(s, e, T, fps))
    return out


def distribution(x, level: float = JAW_OPEN_LEVEL) -> dict:
    """n, median, p10, p90 and the share above `level` of the values x."""
    x = np.asarray(x, np.float64).ravel()
    if x.size == 0:
        return {"n": 0, "median": float("nan"), "p10": float("nan"), "p90": float("nan"),
                "above": float("nan")}
    return {"n": int(x.size), "median": float(np.median(x)), "p10": float(np.percentile(x, 10)),
            "p90": float(np.percentile(x, 90)), "above": float(np.mean(x > level))}


def jaw_statistics(runs) -> dict:
    """Pooled jawOpen and jaw degrees at open-vowel and bilabial centres.

    `runs` yields (phones, jaw_open (T,), jaw_rad (T, 3)) per clip.
    """
    pools = {k: {"jawOpen": [], "jaw_deg": []} for k in ("open_vowels", "bilabials")}
    for phones, jaw_open, jaw in runs:
        T = len(jaw_open)
        for key, kinds, min_s in (("open_vowels", metrics.OPEN_VOWELS, metrics.MIN_VOWEL_S),
                                  ("bilabials", metrics.BILABIALS, metrics.MIN_BILABIAL_S)):
            fr = phone_centre_frames(phones, T, kinds, min_s)
            pools[key]["jawOpen"].extend(np.asarray(jaw_open)[fr].tolist())
            pools[key]["jaw_deg"].extend(np.degrees(np.asarray(jaw)[fr, 0]).tolist())
    return {k: {"jawOpen": distribution(v["jawOpen"]),
                "jaw_deg": distribution(v["jaw_deg"], level=float("inf"))}
            for k, v in pools.items()}


def frame_picks(T: int, n: int) -> list[int]:
    """n evenly spaced frames inside the clip (10% to 90% of it)."""
    return sorted({int(round(f)) for f in np.linspace(0.1 * (T - 1), 0.9 * (T - 1), n)})


# ---------------------------------------------------------------- animation

def animator(args):
    """A function (clip, emotion) -> (exp (T, E) in the head's order, jaw (T, 3))."""
    import eval_lipsync as LS

    if args.teacher:
        run = LS.teacher_animator()

        def anim(head, clip, emotion):
            exp, jaw, names = run(clip["audio"], clip["phones"], emotion=emotion, intensity=1.0)
            return LS.to_head_order(exp, names, head), jaw
        return anim
    run = LS.model_animator(args.model, args.identity)

    def anim(head, clip, emotion):
        exp, jaw, names = run(clip["audio"], emotion=emotion, intensity=1.0)
        return LS.to_head_order(exp, names, head), jaw
    return anim


# ---------------------------------------------------------------- rendering

class Renderer:
    """One Workbench scene of the head; renders a pose front view and returns its pixels."""

    def __init__(self, head, size: int = SIZE):
        sys.path.insert(0, str(ROOT / "scripts"))
        import preview_open_head as P

        self.P, self.head = P, head
        self.scene, self.mesh, cam = P.build_scene(head, size)
        P.place_camera(cam, "front", head)
        self.tmp = Path(tempfile.mkdtemp(prefix="face_vis_"))
        self.background = np.array(self.scene.world.color, np.float64)
        self.n = 0

    def __call__(self, exp: np.ndarray, jaw: np.ndarray, save: Path | None = None) -> np.ndarray:
        import bpy

        self.P.set_pose(self.mesh, self.head, np.asarray(exp, np.float32),
                        np.asarray(jaw, np.float32))
        path = save if save is not None else self.tmp / "frame.png"
        self.P.render(self.scene, path)
        img = bpy.data.images.load(str(path), check_existing=False)
        px = np.empty(img.size[0] * img.size[1] * 4, np.float32)
        img.pixels.foreach_get(px)
        w, h = img.size
        bpy.data.images.remove(img)
        self.n += 1
        return px.reshape(h, w, 4)[::-1, :, :3]

    def background_rgb(self, img: np.ndarray) -> np.ndarray:
        """The background colour as rendered (the corner pixel: the head never reaches it)."""
        return img[0, 0]


def visibility(render: Renderer, head, clips, anim, frames: int, out: Path | None,
               offset_gain: float = 1.0) -> dict:
    """Per emotion: the changed share of all pixels and of head pixels at each picked frame.

    offset_gain scales the emotion take's difference from the neutral take (channels and jaw,
    unclipped: the mesh offset, as the head's shapes are linear in their channels).
    """
    res = {e: {"all": [], "head": []} for e in EMOTIONS[1:]}
    for c in clips:
        ne, nj = anim(head, c, "neutral")
        picks = frame_picks(len(ne), frames)
        ref = {k: render(ne[k], nj[k], _save(out, c, "neutral", k)) for k in picks}
        for emo in EMOTIONS[1:]:
            ee, ej = anim(head, c, emo)
            ee, ej = ne + offset_gain * (ee - ne), nj + offset_gain * (ej - nj)
            for k in picks:
                img = render(ee[k], ej[k], _save(out, c, emo, k))
                bg = render.background_rgb(ref[k])
                face = foreground(ref[k], bg) | foreground(img, bg)
                res[emo]["all"].append(changed_share(ref[k], img))
                res[emo]["head"].append(changed_share(ref[k], img, region=face))
    return res


def _save(out: Path | None, clip, emo: str, k: int) -> Path | None:
    if out is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{clip['id'].replace('/', '_')}_{k:04d}_{emo}.png"


def gain_sweep(render: Renderer, head, clips, args, gains) -> dict:
    """Teacher only: mean changed share (all pixels) per emotion with its pattern scaled."""
    from emote.model_runtime.training import teacher

    base = teacher._EMO_VECS.copy()
    anim = animator(args)
    out = {}
    try:
        for g in gains:
            teacher._EMO_VECS = base * g
            out[g] = {e: float(np.mean(v["all"]))
                      for e, v in visibility(render, head, clips, anim, args.frames, None).items()}
    finally:
        teacher._EMO_VECS = base
    return out


def offset_sweep(render: Renderer, head, clips, anim, args, gains) -> dict:
    """Mean changed share (all pixels) per emotion with the emotion-minus-neutral offset scaled."""
    return {g: {e: float(np.mean(v["all"])) for e, v in
                visibility(render, head, clips, anim, args.frames, None, offset_gain=g).items()}
            for g in gains}


# ---------------------------------------------------------------- report

def print_visibility(res: dict) -> None:
    print(f"\nemotion pixel visibility vs neutral, front view {SIZE} px Workbench, "
          f"changed = any channel > {CHANGE_THRESHOLD * 255:.0f}/255")
    print(f"{'emotion':<11}{'mean %':>8}{'min %':>8}{'max %':>8}{'head %':>8}  vs 3%")
    for emo, v in res.items():
        a, f = np.asarray(v["all"]) * 100, np.asarray(v["head"]) * 100
        ok = "pass" if a.mean() >= VISIBLE_TARGET * 100 else "FAIL"
        print(f"{emo:<11}{a.mean():>8.2f}{a.min():>8.2f}{a.max():>8.2f}{f.mean():>8.2f}  {ok}")
    print("mean/min/max %: share of all 512x512 pixels (the issue's figure) over the frames; "
          "head %: share of the head's pixels")


def print_jaw(stats: dict, n_clips: int) -> None:
    print(f"\njaw at phone centres, {n_clips} dev clips "
          f"(open vowels >= {metrics.MIN_VOWEL_S * 1000:.0f} ms, bilabials >= "
          f"{metrics.MIN_BILABIAL_S * 1000:.0f} ms)")
    print(f"{'phones':<12}{'n':>5}{'jawOpen med':>12}{'p10':>7}{'p90':>7}"
          f"{'>0.3':>7}{'jaw deg med':>12}{'p10':>7}{'p90':>7}")
    for k, v in stats.items():
        j, d = v["jawOpen"], v["jaw_deg"]
        print(f"{k:<12}{j['n']:>5}{j['median']:>12.3f}{j['p10']:>7.3f}{j['p90']:>7.3f}"
              f"{j['above']:>7.2f}{d['median']:>12.2f}{d['p10']:>7.2f}{d['p90']:>7.2f}")


def print_gains(sweep: dict, title: str) -> None:
    gains = list(sweep)
    print(f"\n{title}: mean % of all pixels changed (experiment)")
    print(f"{'emotion':<11}" + "".join(f"{'x' + format(g, 'g'):>8}" for g in gains)
          + "  first gain >= 3%")
    for emo in EMOTIONS[1:]:
        vals = [sweep[g][emo] for g in gains]
        first = next((g for g, v in zip(gains, vals) if v >= VISIBLE_TARGET), None)
        print(f"{emo:<11}" + "".join(f"{v * 100:>8.2f}" for v in vals)
              + f"  {'x' + format(first, 'g') if first else 'none'}")


def main(argv: list[str] | None = None) -> int:
    import eval_lipsync as LS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help='"default" or a checkpoint folder')
    ap.add_argument("--teacher", action="store_true", help="score the procedural teacher")
    ap.add_argument("--head", default=None, help="head .npz (default: the open head)")
    ap.add_argument("--identity", default=None, help="speaking style name of the checkpoint")
    ap.add_argument("--vis-clips", type=int, default=2, help="dev clips rendered per emotion")
    ap.add_argument("--frames", type=int, default=4, help="frames rendered per clip")
    ap.add_argument("--limit", type=int, default=30, help="dev clips for the jaw figures")
    ap.add_argument("--gains", default=None, help="teacher only: comma list of pattern gains")
    ap.add_argument("--offset-gains", default=None,
                    help="comma list of gains on the emotion take's offset from neutral")
    ap.add_argument("--skip-render", action="store_true", help="only the jaw figures")
    ap.add_argument("--out", default=None, help="also keep the renders here")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if bool(args.model) == bool(args.teacher):
        ap.error("give exactly one of --model default|DIR and --teacher")
    if args.gains and not args.teacher:
        ap.error("--gains scales the teacher's emotion patterns: use it with --teacher")
    from emote.model_runtime.heads.head_model import load_head

    head = load_head(args.head) if args.head else LS.default_head()
    clips = LS.load_clips("dev", "data/corpus", args.limit)
    anim = animator(args)
    name = "teacher" if args.teacher else f"model:{Path(args.model).name}"
    print(f"{name}, head {head.head_id}; emotion renders on dev clips "
          f"{', '.join(c['id'] for c in clips[:args.vis_clips])}, {args.frames} frames each")
    jaw_col = head.exp_names.index("jawOpen")

    def runs():
        for c in clips:
            exp, jaw = anim(head, c, "neutral")
            yield c["phones"], exp[:, jaw_col], jaw
    report = {"who": name, "head": head.head_id, "jaw": jaw_statistics(runs())}
    print_jaw(report["jaw"], len(clips))
    if not args.skip_render:
        render = Renderer(head)
        report["visibility"] = visibility(render, head, clips[:args.vis_clips], anim, args.frames,
                                          Path(args.out) if args.out else None)
        print_visibility(report["visibility"])
        if args.gains:
            gains = [float(g) for g in args.gains.split(",")]
            report["gains"] = gain_sweep(render, head, clips[:args.vis_clips], args, gains)
            print_gains(report["gains"], "teacher emotion-pattern gain sweep (clipped to [0, 1])")
        if args.offset_gains:
            gains = [float(g) for g in args.offset_gains.split(",")]
            report["offset_gains"] = offset_sweep(render, head, clips[:args.vis_clips], anim,
                                                  args, gains)
            print_gains(report["offset_gains"], "emotion offset gain sweep (unclipped)")
        print(f"\n{render.n} renders")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
