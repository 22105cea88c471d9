"""Build the training speech corpus: synthetic English with exact phone timings, augmented toward
real recordings, plus force-aligned Asterisk prompts as pseudo-ground-truth (never dev/reserved).

    python -m model_runtime.training.corpus --out data/corpus --hours 1.0 --seed 0 [--asterisk]

Writes `wavs/*.wav` (16 kHz mono PCM16) and `manifest.jsonl` (one utterance per line, appended
as it goes, so a build can be resumed and read while it runs). The split holds out whole voices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MANIFEST = "manifest.jsonl"
# whole voices held out for validation (speaker-disjoint, like EMOTE's subject split)
VAL_VOICES = frozenset({"flite:rms", "rhvoice:clb"})
VAL_ESPEAK_VARIANTS = frozenset({"f4", "m5", "klatt3", "steph", "edward"})
ENGINE_SHARE = {"flite": 0.33, "festival": 0.17, "espeak": 0.42, "rhvoice": 0.08}


def voice_split(voice_name: str) -> str:
    """"val" for held-out voices, else "train"."""
    if voice_name in VAL_VOICES:
        return "val"
    if voice_name.startswith("espeak:") and "+" in voice_name:
        if voice_name.split("+", 1)[1] in VAL_ESPEAK_VARIANTS:
            return "val"
    return "train"


def read_manifest(corpus_dir: str | Path, split: str | None = None) -> list[dict]:
    """Utterances of a corpus folder (manifest.jsonl), with `wav` made absolute as `wav_path`.

    A truncated last line (a build still writing) is ignored. `split` filters "train"/"val".
    """
    corpus_dir = Path(corpus_dir)
    out = []
    with open(corpus_dir / MANIFEST, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if split is not None and rec.get("split") != split:
                continue
            rec["wav_path"] = str(corpus_dir / rec["wav"])
            out.append(rec)
    return out


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1, 1), 16000, subtype="PCM_16")


def _existing_ids(manifest: Path) -> set[str]:
    if not manifest.is_file():
        return set()
    ids = set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError):
            continue
    return ids


def _pick_voice(voices, rng: np.random.Generator):
    by_engine: dict[str, list] = {}
    for v in voices:
        by_engine.setdefault(v.engine, []).append(v)
    engines = sorted(by_engine)
    p = np.array([ENGINE_SHARE.get(e, 0.1) for e in engines])
    eng = engines[int(rng.choice(len(engines), p=p / p.sum()))]
    vs = by_engine[eng]
    return vs[int(rng.integers(len(vs)))]


def _scale_phones(phones: list, scale: float, total: float) -> list:
    out = []
    for ph, s, e in phones:
        s2, e2 = min(s * scale, total), min(e * scale, total)
        if e2 > s2:
            out.append([ph, round(s2, 4), round(e2, 4)])
    return out


def build_tts(out: Path, seconds: float, seed: int, voices=None, log=print,
              augment_share: float = 0.8, max_utt_s: float = 20.0) -> float:
    """Synthesise utterances until `seconds` of audio were added; returns the seconds added.

    Utterance ids derive from the seed and a counter, so a rerun with the same seed resumes.
    """
    from . import augment, text, tts_engines

    voices = tts_engines.available_voices() if voices is None else voices
    if not voices:
        raise RuntimeError("no speech synthesiser is installed: run scripts/install_speech_tools.sh")
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    done = _existing_ids(manifest)
    added, i, t0 = 0.0, 0, time.time()
    with open(manifest, "a", encoding="utf-8") as mf:
        while added < seconds:
            uid = f"tts-s{seed}-{i:06d}"
            rng = np.random.default_rng([seed, i])
            i += 1
            if uid in done:
                continue
            voice = _pick_voice(voices, rng)
            sentence = text.generate_utterance(rng)
            rate = float(rng.uniform(0.8, 1.25))
            pitch = float(rng.uniform(0.8, 1.25))
            try:
                audio, phones = tts_engines.synthesize(voice, sentence, rate, pitch)
            except Exception as exc:  # an engine refusing a text: skip it, keep going
                log(f"skip {uid} ({voice.name}): {exc}")
                continue
            dur = len(audio) / 16000
            if dur < 1.0 or dur > max_utt_s or not any(p[0] != "SIL" for p in phones):
                continue
            desc, scale = "clean", 1.0
            if rng.uniform() < augment_share:
                audio, desc, scale = augment.random_augment(audio, rng)
            dur = len(audio) / 16000
            phones = _scale_phones(phones, scale, dur)
            _write_wav(out / "wavs" / f"{uid}.wav", audio)
            rec = {"id": uid, "wav": f"wavs/{uid}.wav", "phones": phones, "text": sentence,
                   "voice": voice.name, "engine": voice.engine, "augment": desc,
                   "split": voice_split(voice.name), "source": "tts", "licence": voice.licence,
                   "rate": round(rate, 3), "pitch": round(pitch, 3)}
            mf.write(json.dumps(rec) + "\n")
            mf.flush()
            added += dur
            if i % 25 == 0:
                el = time.time() - t0
                log(f"{uid}: {added / 60:.1f} min audio in {el / 60:.1f} min "
                    f"({added / max(el, 1e-6):.1f}x real time)")
    return added


def build_asterisk(out: Path, seed: int, copies: int = 2, log=print,
                   cache_dir: Path | None = None) -> int:
    """Add the force-aligned Asterisk prompts (train split only; dev and reserved excluded).

    Each prompt appears once as recorded and `copies - 1` times augmented.
    """
    from . import align, augment

    keys = align.asterisk_training_keys()
    banned = align.excluded_clip_keys()
    tr = align.asterisk_transcripts()
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    done = _existing_ids(manifest)
    aligner = align.Aligner()
    cache_dir = cache_dir or out / "align_cache"
    n = 0
    with open(manifest, "a", encoding="utf-8") as mf:
        for key in keys:
            assert key not in banned  # enforced twice on purpose: these must never be trained on
            audio = align.load_asterisk_clip(key)
            res = align.align_cached(aligner, key, audio, tr[key], cache_dir)
            if res is None:
                log(f"alignment failed: {key}")
                continue
            for c in range(copies):
                uid = f"ast-{key.replace('/', '__')}-{c}"
                if uid in done:
                    continue
                rng = np.random.default_rng([seed, 7, c, len(key), sum(map(ord, key))])
                a, desc, scale = audio, "asterisk-8k", 1.0
                if c > 0:
                    a, desc, scale = augment.random_augment(audio, rng)
                phones = _scale_phones(res["phones"], scale, len(a) / 16000)
                words = _scale_phones(res["words"], scale, len(a) / 16000)
                _write_wav(out / "wavs" / f"{uid}.wav", a)
                rec = {"id": uid, "wav": f"wavs/{uid}.wav", "phones": phones, "words": words,
                       "text": tr[key], "voice": "asterisk:allison", "engine": "pocketsphinx-align",
                       "augment": desc, "split": "train", "source": "asterisk",
                       "licence": align.ASTERISK_LICENCE, "asterisk_key": key}
                mf.write(json.dumps(rec) + "\n")
                mf.flush()
                n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/corpus")
    ap.add_argument("--hours", type=float, default=0.5, help="hours of synthetic speech to add")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--asterisk", action="store_true",
                    help="also add force-aligned Asterisk prompts (dev and reserved excluded)")
    ap.add_argument("--engines", default="", help="comma list to restrict (flite,festival,espeak)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    out = Path(args.out)
    from . import tts_engines

    voices = tts_engines.available_voices()
    if args.engines:
        keep = set(args.engines.split(","))
        voices = [v for v in voices if v.engine in keep]
    log(f"{len(voices)} voices: " + ", ".join(sorted({v.engine for v in voices})))
    t0 = time.time()
    if args.hours > 0:
        added = build_tts(out, args.hours * 3600, args.seed, voices, log)
        el = time.time() - t0
        log(f"tts: added {added / 60:.1f} min of audio in {el / 60:.1f} min "
            f"({added / max(el, 1e-6):.1f}x real time)")
    if args.asterisk:
        n = build_asterisk(out, args.seed, log=log)
        log(f"asterisk: added {n} utterances")
    recs = read_manifest(out)
    tot = sum(r["phones"][-1][2] for r in recs if r["phones"])
    log(f"manifest: {len(recs)} utterances, {tot / 3600:.2f} h "
        f"({sum(r['split'] == 'val' for r in recs)} val)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
