"""Forced alignment of real speech with pocketsphinx 5.1.1 (METRICS.md recipe), plus the Asterisk
prompts as pseudo-ground-truth, with the dev and reserved prompts excluded in code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from .text import ARPABET, load_cmudict, normalize_for_alignment

_ARPA = set(ARPABET)
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
ASTERISK_LICENCE = "asterisk-core-sounds-en (Allison Smith): CC-BY-SA-3.0"


def shared_dir() -> Path:
    """The project's shared folder (env EMOTE_SHARED_DIR, else ../shared beside the repository)."""
    env = os.environ.get("EMOTE_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared"


def _read_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.add(line.split()[0])
    return keys


def dev_clip_keys() -> list[str]:
    """The 60 dev-set prompt keys, in file order."""
    path = shared_dir() / "dev_eval_clips.txt"
    return [ln.split()[0] for ln in path.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def excluded_clip_keys() -> set[str]:
    """Dev and reserved prompt keys: never train, tune or select on them.

    Raises FileNotFoundError when either list is missing, so nothing is mixed in by accident.
    """
    d = shared_dir()
    paths = [d / "dev_eval_clips.txt", d / "reserved_clips.txt"]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: cannot tell which Asterisk prompts are held "
                                    "out, so none are used. Set EMOTE_SHARED_DIR.")
    return _read_keys(paths[0]) | _read_keys(paths[1])


def asterisk_transcripts(path: Path = ASTERISK_TRANSCRIPTS) -> dict[str, str]:
    """Prompt key -> transcript, skipping entries that are only sound descriptions."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out: dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            key, text = line.split(":", 1)
            text = re.sub(r"\[[^\]]*\]", " ", text).strip()
            if text and re.search(r"[A-Za-z0-9]", text):
                out[key.strip()] = text
    return out


def asterisk_training_keys(transcripts: dict[str, str] | None = None,
                           sounds: Path = ASTERISK_SOUNDS) -> list[str]:
    """Prompt keys usable for training: with a transcript and a wav, minus dev and reserved."""
    transcripts = asterisk_transcripts() if transcripts is None else transcripts
    banned = excluded_clip_keys()
    return sorted(k for k in transcripts if k not in banned and (sounds / f"{k}.wav").is_file())


class Aligner:
    """pocketsphinx forced aligner; one decoder reused across clips (creating one takes ~1 s)."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=16000, lm=None, bestpath=False, beam=1e-48, wbeam=1e-48,
                               pbeam=1e-48, loglevel="FATAL")
        self.added: set[str] = set()

    def _pron(self, word: str) -> list[str] | None:
        d = load_cmudict()
        if word in d:
            return None  # known
        if word.endswith("'s") and word[:-2] in d:
            base = list(d[word[:-2]][0])
            return base + (["IH", "Z"] if base[-1] in ("S", "Z", "SH", "CH", "JH", "ZH") else
                           ["S"] if base[-1] in ("P", "T", "K", "F", "TH") else ["Z"])
        parts = [p for p in re.split(r"[-']", word) if p]
        if len(parts) > 1 and all(p in d for p in parts):
            return [ph for p in parts for ph in d[p][0]]
        letters = [c for c in word if c.isalpha()]
        if letters and all(c in d for c in letters):  # spell it out
            return [ph for c in letters for ph in d[c][0]]
        return []

    def words(self, text: str) -> list[str]:
        """Transcript to dictionary words, adding pronunciations for unknown ones."""
        out = []
        for w in normalize_for_alignment(text):
            pr = self._pron(w)
            if pr is None:
                out.append(w)
            elif pr:
                if w not in self.added:
                    self.decoder.add_word(w, " ".join(pr), True)
                    self.added.add(w)
                out.append(w)
        return out

    def align(self, audio16k: np.ndarray, text: str) -> dict | None:
        """{"phones": [[ARPAbet, s, e]], "words": [[word, s, e]]} or None when alignment fails."""
        words = self.words(text)
        if not words:
            return None
        pcm = (np.clip(audio16k, -1, 1) * 32767).astype(np.int16).tobytes()
        dec = self.decoder
        try:
            dec.set_align_text(" ".join(words))
            for second in (False, True):
                if second:
                    dec.set_alignment()
                dec.start_utt()
                dec.process_raw(pcm, full_utt=True)
                dec.end_utt()
            al = dec.get_alignment()
        except Exception:
            return None
        if al is None:
            return None
        phones, wlist = [], []
        for w in al.words():
            s, e = w.start / 100.0, (w.start + w.duration) / 100.0
            name = re.sub(r"\(\d+\)$", "", w.name)
            if name not in ("<s>", "</s>", "<sil>") and not name.startswith("+"):
                wlist.append([name, round(s, 3), round(e, 3)])
        for p in al.phones():
            s, e = p.start / 100.0, (p.start + p.duration) / 100.0
            ph = p.name.upper()
            phones.append([ph if ph in _ARPA else "SIL", round(s, 3), round(e, 3)])
        if not wlist or not any(p[0] != "SIL" for p in phones):
            return None
        from .tts_engines import merge_silences

        return {"phones": merge_silences(phones), "words": wlist}


def load_asterisk_clip(key: str, sounds: Path = ASTERISK_SOUNDS) -> np.ndarray:
    """The prompt's audio at 16 kHz float32 (the originals are 8 kHz)."""
    from .tts_engines import _read_wav

    return _read_wav(str(sounds / f"{key}.wav"))


def align_cached(aligner: Aligner | None, key: str, audio16k: np.ndarray, text: str,
                 cache_dir: Path) -> dict | None:
    """Alignment from the cache (keyed by audio and text hash) or computed and stored."""
    h = hashlib.sha1(audio16k.astype(np.float32).tobytes() + text.encode()).hexdigest()[:16]
    path = Path(cache_dir) / (key.replace("/", "__") + f".{h}.json")
    if path.is_file():
        return json.loads(path.read_text())
    aligner = aligner or Aligner()
    res = aligner.align(audio16k, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res))
    return res


def dev_set(cache_dir: Path = Path("data/align_cache/dev")) -> list[dict]:
    """The dev clips with audio, transcript and (cached) alignment; failed alignments dropped."""
    tr = asterisk_transcripts()
    aligner = None
    out = []
    for key in dev_clip_keys():
        audio = load_asterisk_clip(key)
        h = hashlib.sha1(audio.astype(np.float32).tobytes() + tr[key].encode()).hexdigest()[:16]
        if aligner is None and not (Path(cache_dir) / (key.replace("/", "__") + f".{h}.json")).is_file():
            aligner = Aligner()
        res = align_cached(aligner, key, audio, tr[key], cache_dir)
        if res:
            out.append({"id": key, "audio": audio, "text": tr[key], **res})
    return out
