"""Compact training cache: log-mel features, phones and teacher targets for several variants.

Everything the training stages read comes from one `.npz` (fp16 where it can), so a machine
without our TTS tools (e.g. a GPU box) can train with `--cache-only` from the cache alone.
Per utterance it holds the encoder's features, per-frame phone classes, the phone segments
(for the lip-sync proxy) and, for `variants` random (emotion curve, intensity, style) draws, the
teacher's expression and jaw targets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .phones import frame_labels, phone_class

CACHE_FORMAT = 3
# Expression, emotion weights and intensity lie in 0..1: stored as uint8 (steps of 1/255, well
# under 0.1 mm of vertex motion) so a one-hour corpus with 8 variants stays near 50 MB.
U8 = 255.0
# Log-mel features (natural log, about -11.5..+8) as uint8 in steps of 0.1 (0.43 dB) from -12.
FEAT_LOW, FEAT_STEP = -12.0, 0.1
FPS = 25.0
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


@dataclass
class Utterance:
    """One corpus entry with its audio already loaded (16 kHz mono float32)."""
    uid: str
    audio: np.ndarray
    phones: list
    split: str  # "train" or "val"
    source: str  # "tts" or "asterisk" (or other)
    voice: str = ""


@dataclass
class Cache:
    """The loaded cache; per-utterance slices come from `frame_offsets` / `feat_offsets`."""
    meta: dict
    ids: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) int8, 0 train, 1 val
    source: np.ndarray  # (N,) str
    frames: np.ndarray  # (N,) int64, T per utterance
    frame_offsets: np.ndarray  # (N+1,)
    feat: np.ndarray  # (sum (T * r + 1), C) float16
    phone_frames: np.ndarray  # (sum T,) int8
    seg_offsets: np.ndarray  # (N+1,) into seg_*
    seg_class: np.ndarray  # (S,) int8
    seg_times: np.ndarray  # (S, 2) float32 seconds
    emotion: np.ndarray  # (K, sum T, 8) float16
    intensity: np.ndarray  # (K, sum T) float16
    style: np.ndarray  # (K, N) int16
    exp: np.ndarray  # (K, sum T, E) float16
    jaw: np.ndarray  # (K, sum T, 3) float16
    voice: np.ndarray | None = None  # (N,) str, the speaker or TTS voice ("" when unknown)

    def feat_offset(self, n: int) -> int:
        """First feature row of utterance n (each has ratio * T + 1 rows)."""
        return int(self.ratio * self.frame_offsets[n] + n)

    @property
    def ratio(self) -> int:
        """Feature frames per output frame."""
        return int(self.meta["feature_ratio"])

    @property
    def variants(self) -> int:
        return int(self.emotion.shape[0])

    def indices(self, split: str, sources: tuple[str, ...] | None = None) -> np.ndarray:
        """Utterance indices of a split ('train'/'val'), optionally only from some sources."""
        keep = self.split == (0 if split == "train" else 1)
        if sources is not None:
            keep &= np.isin(self.source, list(sources))
        return np.nonzero(keep)[0]


def normalise_audio(audio: np.ndarray) -> np.ndarray:
    """Whole-clip zero mean, unit variance (as the runtime does before the encoder)."""
    a = np.asarray(audio, dtype=np.float32)
    return ((a - a.mean()) / np.sqrt(a.var() + 1e-7)).astype(np.float32)


def num_frames(num_samples: int) -> int:
    return int(num_samples // SAMPLES_PER_FRAME)


def fit_features(feat: np.ndarray, T: int, ratio: int) -> np.ndarray:
    """Crop or edge-pad encoder features (F, C) to exactly T * ratio + 1 rows.

    Centred STFT frames: row k sits at sample k * hop, so frames [t0, t0 + W) of the clip are
    rows [ratio * t0, ratio * (t0 + W)], the same rows the encoder gives for that audio window.
    """
    want = T * ratio + 1
    if feat.shape[0] >= want:
        return feat[:want]
    pad = np.repeat(feat[-1:], want - feat.shape[0], axis=0)
    return np.concatenate([feat, pad], 0)


def build_cache(utterances: list[Utterance], out_path: str | Path,
                feature_fn: Callable[[np.ndarray], np.ndarray],
                teacher_fn: Callable, curve_fn: Callable, styles: list[str],
                variants: int = 8, seed: int = 0, extra_meta: dict | None = None,
                progress: Callable[[str], None] | None = print) -> Path:
    """Compute features and `variants` teacher targets per utterance and write the cache.

    feature_fn(normalised audio) -> (F, C); teacher_fn(phones, audio, emotion (T, 8),
    intensity (T,), style, rng) -> (exp (T, E), jaw (T, 3)); curve_fn(T, rng) -> (emotion (T, 8),
    intensity (T,)). Variant 0 of every utterance is neutral so plain speech is always covered.
    """
    rng = np.random.default_rng(seed)
    utts = [u for u in utterances if num_frames(len(u.audio)) >= 8]
    if not utts:
        raise ValueError("no utterance is long enough (>= 8 frames) to train on")
    t0 = time.time()
    first = np.asarray(feature_fn(normalise_audio(utts[0].audio)))
    ratio = max(1, int(round(first.shape[0] / num_frames(len(utts[0].audio)))))
    feats, pframes, segc, segt, seg_off, frames = [], [], [], [], [0], []
    K = variants
    emo = [[] for _ in range(K)]
    inten = [[] for _ in range(K)]
    exps = [[] for _ in range(K)]
    jaws = [[] for _ in range(K)]
    style = np.zeros((K, len(utts)), dtype=np.int16)
    for n, u in enumerate(utts):
        T = num_frames(len(u.audio))
        f = first if n == 0 else np.asarray(feature_fn(normalise_audio(u.audio)))
        feats.append(fit_features(f, T, ratio).astype(np.float16))
        pframes.append(frame_labels(u.phones, T, FPS).astype(np.int8))
        for label, s, e in u.phones:
            segc.append(phone_class(label))
            segt.append((float(s), float(e)))
        seg_off.append(len(segc))
        frames.append(T)
        for k in range(K):
            if k == 0:
                w = np.zeros((T, 8), np.float32)
                w[:, 0] = 1.0
                i = np.full(T, rng.uniform(0.3, 1.0), np.float32)
            else:
                w, i = curve_fn(T, rng)
            s = int(rng.integers(len(styles)))
            e, j = teacher_fn(u.phones, u.audio, np.asarray(w, np.float32),
                              np.asarray(i, np.float32), styles[s], rng)
            emo[k].append(np.asarray(w, np.float16))
            inten[k].append(np.asarray(i, np.float16))
            exps[k].append(np.asarray(e, np.float16))
            jaws[k].append(np.asarray(j, np.float16))
            style[k, n] = s
        if progress and (n + 1) % 50 == 0:
            progress(f"cache: {n + 1}/{len(utts)} utterances, {time.time() - t0:.0f} s")
    meta = {"format": CACHE_FORMAT, "fps": FPS, "feature_ratio": ratio, "variants": K,
            "styles": list(styles), "seed": seed, "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            **(extra_meta or {})}
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "ids": np.array([u.uid for u in utts]),
        "split": np.array([0 if u.split == "train" else 1 for u in utts], np.int8),
        "source": np.array([u.source for u in utts]),
        "voice": np.array([u.voice for u in utts]),
        "frames": np.array(frames, np.int64),
        "feat": np.round((np.clip(np.concatenate(feats, 0).astype(np.float32), FEAT_LOW,
                                  FEAT_LOW + 255 * FEAT_STEP) - FEAT_LOW) / FEAT_STEP
                         ).astype(np.uint8),
        "phone_frames": np.concatenate(pframes, 0),
        "seg_offsets": np.array(seg_off, np.int64),
        "seg_class": np.array(segc, np.int8),
        "seg_times": np.array(segt, np.float32).reshape(-1, 2),
        "emotion": _to_u8(np.stack([np.concatenate(x, 0) for x in emo])),
        "intensity": _to_u8(np.stack([np.concatenate(x, 0) for x in inten])),
        "style": style,
        "exp": _to_u8(np.stack([np.concatenate(x, 0) for x in exps])),
        "jaw": np.stack([np.concatenate(x, 0) for x in jaws]),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out_path)
    if progress:
        mb = out_path.stat().st_size / 1e6
        progress(f"cache: wrote {out_path} ({len(utts)} utterances, {sum(frames)} frames, "
                 f"{K} variants, {mb:.1f} MB) in {time.time() - t0:.0f} s")
    return out_path


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x.astype(np.float32), 0.0, 1.0) * U8).astype(np.uint8)


def _from_u8(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / U8).astype(np.float16)


def load_cache(path: str | Path) -> Cache:
    """Read a cache written by build_cache (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(str(d.pop("meta")))
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError(f"cache {path} has format {meta.get('format')}, expected {CACHE_FORMAT}; "
                         "rebuild it (drop --cache-only)")
    frames = d["frames"]
    for key in ("emotion", "intensity", "exp"):
        d[key] = _from_u8(d[key])
    d["feat"] = (d["feat"].astype(np.float32) * FEAT_STEP + FEAT_LOW).astype(np.float16)
    if "voice" not in d:
        d["voice"] = voices_from_manifests(d["ids"], meta.get("corpus", {}).get("corpora", []))
    return Cache(meta=meta, frame_offsets=np.concatenate([[0], np.cumsum(frames)]), **d)


def voices_from_manifests(ids: np.ndarray, corpora: list[str]) -> np.ndarray:
    """(N,) voice of each cached id from the manifests of the corpora it was built from (caches
    written before they stored `voice`); an augmented copy "ID~augK" is ID's voice, and an id no
    manifest (still) holds gets ""."""
    from .corpus import read_manifest

    voice = {}
    for corpus in corpora:
        if (Path(corpus) / "manifest.jsonl").is_file():
            voice.update({r["id"]: r.get("voice", "") for r in read_manifest(corpus)})
    return np.array([voice.get(str(i).split("~")[0], "") for i in ids])
