"""Free speech synthesisers with exact phone timings: flite, festival and espeak-ng (ctypes).

Each engine returns 16 kHz float32 audio and ARPAbet phones [[phone, start_s, end_s], ...] with
"SIL" for pauses. Voices are free software only (no mbrola); each records its licence.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Voice:
    name: str  # "engine:voice", unique; the corpus split holds out whole voices
    engine: str
    voice: str
    licence: str
    params: dict = field(default_factory=dict, hash=False, compare=False)


FLITE_VOICES = {"awb": "CMU Flite voice licence (BSD-style, free)",
                "rms": "CMU Flite voice licence (BSD-style, free)",
                "slt": "CMU Flite voice licence (BSD-style, free)",
                "kal16": "CMU Flite voice licence (BSD-style, free)"}
FESTIVAL_VOICES = {"kal_diphone": "festvox-kallpc16k: free (BSD-style, CSTR/OGI diphones)",
                   "cmu_us_slt_arctic_hts": "festvox-us-slt-hts: CMU ARCTIC free licence (BSD-style)"}
ESPEAK_LICENCE = "espeak-ng: GPL-3.0-or-later"
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "croak", "whisper", "Andy", "Annie", "Denis",
                   "Michael", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb",
                   "david", "ed", "edward", "iven", "john", "linda", "max", "norbert", "paul",
                   "pedro", "quincy", "rob", "robert", "steph", "travis", "victor", "zac")
ESPEAK_LANGS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland")

# CMU/festival phone names (lower case) that differ from ARPAbet
_CMU_MAP = {"pau": "SIL", "h#": "SIL", "#": "SIL", "ax": "AH", "axr": "ER", "ix": "IH",
            "el": "L", "em": "M", "en": "N", "dx": "T", "nx": "N", "hv": "HH", "ux": "UW",
            "q": "SIL", "ssil": "SIL"}
# espeak-ng English phoneme mnemonics to ARPAbet
_ESPEAK_MAP = {
    "@": "AH", "@2": "AH", "@5": "AH", "@L": "L", "@r": "ER", "3": "ER", "3:": "ER", "V": "AH",
    "a": "AE", "a#": "AE", "aa": "AA", "A:": "AA", "A@": "AA", "A": "AA", "0": "AA", "E": "EH",
    "e@": "EH", "e": "EH", "eI": "EY", "i": "IY", "i:": "IY", "i@": "IY", "i@3": "IY", "I": "IH",
    "I#": "IH", "I2": "IH", "O:": "AO", "O": "AO", "O@": "AO", "o@": "AO", "oU": "OW", "o": "OW",
    "OI": "OY", "aI": "AY", "aI@": "AY", "aI3": "AY", "aU": "AW", "aU@": "AW", "U": "UH",
    "U@": "UH", "u:": "UW", "u": "UW", "p": "P", "b": "B", "t": "T", "t#": "T", "d": "D",
    "d#": "D", "k": "K", "g": "G", "f": "F", "v": "V", "s": "S", "z": "Z", "h": "HH", "m": "M",
    "n": "N", "n-": "N", "m-": "M", "l": "L", "l/": "L", "L": "L", "r": "R", "r-": "R", "w": "W",
    "j": "Y", "N": "NG", "T": "TH", "D": "DH", "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH",
    "x": "K", "?": "T", "hw": "W", "_": "SIL", "_:": "SIL", "_!": "SIL", "_^_": "SIL", "": "SIL",
    "||": "SIL", "|": "SIL",
}


def cmu_to_arpabet(ph: str) -> str:
    """flite/festival phone (lower-case CMU names) to ARPAbet without stress."""
    p = ph.strip().lower().rstrip("012")
    return _CMU_MAP.get(p, p.upper())


def espeak_to_arpabet(ph: str) -> str:
    """espeak-ng phoneme mnemonic to ARPAbet (unknown ones by their first known prefix)."""
    if ph in _ESPEAK_MAP:
        return _ESPEAK_MAP[ph]
    for k in range(len(ph) - 1, 0, -1):
        if ph[:k] in _ESPEAK_MAP:
            return _ESPEAK_MAP[ph[:k]]
    return "SIL" if ph.startswith("_") else "AH"


def _resample(a: np.ndarray, sr: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if sr == SAMPLE_RATE:
        return a.astype(np.float32)
    g = np.gcd(sr, SAMPLE_RATE)
    return resample_poly(a, SAMPLE_RATE // g, sr // g).astype(np.float32)


def _read_wav(path: str) -> np.ndarray:
    import soundfile as sf

    a, sr = sf.read(path, dtype="float32", always_2d=True)
    return _resample(a.mean(1), sr)


def _ends_to_phones(ends: list[tuple[str, float]], total_s: float) -> list[list]:
    phones, prev = [], 0.0
    for ph, end in ends:
        end = min(end, total_s)
        if end > prev + 1e-4:
            phones.append([ph, round(prev, 4), round(end, 4)])
            prev = end
    if total_s > prev + 0.005:
        phones.append(["SIL", round(prev, 4), round(total_s, 4)])
    return merge_silences(phones)


def merge_silences(phones: list[list]) -> list[list]:
    """Join neighbouring SIL entries (and same-phone duplicates at pauses)."""
    out: list[list] = []
    for p in phones:
        if out and p[0] == "SIL" and out[-1][0] == "SIL":
            out[-1][2] = p[2]
        else:
            out.append(list(p))
    return out


# --- flite ------------------------------------------------------------------------------------
def _flite(voice: Voice, text: str, rate: float, pitch: float, tmp: str):
    wav = os.path.join(tmp, "f.wav")
    cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", wav, "-psdur",
           "--setf", f"duration_stretch={1.0 / rate:.3f}"]
    if pitch != 1.0:
        base = {"awb": 110, "rms": 95, "slt": 170, "kal16": 100}.get(voice.voice, 110)
        cmd += ["--setf", f"int_f0_target_mean={base * pitch:.1f}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    ends = []
    for tok in r.stdout.split():
        if ":" in tok:
            ph, t = tok.rsplit(":", 1)
            ends.append((cmu_to_arpabet(ph), float(t)))
    audio = _read_wav(wav)
    return audio, _ends_to_phones(ends, len(audio) / SAMPLE_RATE)


# --- festival ---------------------------------------------------------------------------------
def _festival(voice: Voice, text: str, rate: float, pitch: float, tmp: str):
    wav, segs, scm = (os.path.join(tmp, n) for n in ("f.wav", "f.segs", "f.scm"))
    safe = text.replace("\\", " ").replace('"', " ")
    with open(scm, "w") as f:
        f.write(f"(voice_{voice.voice})\n(Parameter.set 'Duration_Stretch {1.0 / rate:.3f})\n"
                f"(set! u (Utterance Text \"{safe}\"))\n(utt.synth u)\n"
                f"(utt.save.wave u \"{wav}\" 'riff)\n(utt.save.segs u \"{segs}\")\n")
    subprocess.run(["festival", "-b", scm], capture_output=True, timeout=300, check=True)
    ends = []
    with open(segs) as f:
        body = f.read().split("#", 1)[-1]
    for line in body.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            ends.append((cmu_to_arpabet(parts[2]), float(parts[0])))
    audio = _read_wav(wav)
    # festival has no simple pitch knob here; speaker variety comes from augment.speed_warp
    return audio, _ends_to_phones(ends, len(audio) / SAMPLE_RATE)


# --- espeak-ng through its C library ----------------------------------------------------------
class _EspeakId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EspeakId)]


_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                       ctypes.POINTER(_EspeakEvent))
_ESPEAK: dict = {}


def _espeak_lib():
    """Load libespeak-ng once, synchronous mode with phoneme events; None when absent."""
    if "lib" in _ESPEAK:
        return _ESPEAK["lib"]
    lib = None
    for name in ("libespeak-ng.so.1", "libespeak-ng.so"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is not None:
        sr = lib.espeak_Initialize(2, 0, None, 1)  # AUDIO_OUTPUT_SYNCHRONOUS, phoneme events
        if sr <= 0:
            lib = None
        else:
            state = {"chunks": [], "events": []}

            def cb(wav, n, ev):
                if n > 0:
                    state["chunks"].append(np.ctypeslib.as_array(wav, (n,)).copy())
                i = 0
                while ev[i].type != 0:
                    if ev[i].type == 7:
                        state["events"].append((ev[i].id.string.decode("ascii", "replace"),
                                                ev[i].sample))
                    i += 1
                return 0

            cfun = _CB(cb)
            lib.espeak_SetSynthCallback(cfun)
            _ESPEAK.update(sr=sr, state=state, cb=cfun)
    _ESPEAK["lib"] = lib
    return lib


def _espeak(voice: Voice, text: str, rate: float, pitch: float, tmp: str):
    lib = _espeak_lib()
    if lib is None:
        raise RuntimeError("libespeak-ng is not installed")
    st = _ESPEAK["state"]
    st["chunks"].clear()
    st["events"].clear()
    if lib.espeak_SetVoiceByName(voice.voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice.voice}")
    lib.espeak_SetParameter(1, int(round(175 * rate)), 0)  # espeakRATE (words per minute)
    lib.espeak_SetParameter(3, int(np.clip(50 * pitch, 5, 95)), 0)  # espeakPITCH 0..100
    data = text.encode("utf-8")
    lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 1, None, None)  # espeakCHARS_UTF8
    lib.espeak_Synchronize()
    sr = _ESPEAK["sr"]
    raw = np.concatenate(st["chunks"]) if st["chunks"] else np.zeros(0, np.int16)
    audio = _resample(raw.astype(np.float32) / 32768.0, sr)
    total = len(raw) / sr
    starts = [(espeak_to_arpabet(p), s / sr) for p, s in st["events"]]
    ends = [(starts[i][0], starts[i + 1][1]) for i in range(len(starts) - 1)]
    if starts:
        ends.insert(0, ("SIL", starts[0][1]))
        ends.append((starts[-1][0], total))
    return audio, _ends_to_phones(ends, len(audio) / SAMPLE_RATE)


_ENGINES = {"flite": _flite, "festival": _festival, "espeak": _espeak}


def available_voices() -> list[Voice]:
    """Every installed free voice; espeak-ng contributes language x variant virtual voices."""
    out: list[Voice] = []
    if shutil.which("flite"):
        r = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
        have = set(r.stdout.split(":", 1)[-1].split())
        out += [Voice(f"flite:{v}", "flite", v, lic) for v, lic in FLITE_VOICES.items() if v in have]
    if shutil.which("festival"):
        roots = [Path("/usr/share/festival/voices")]
        have = {p.name for r in roots if r.is_dir() for p in r.glob("*/*")}
        out += [Voice(f"festival:{v}", "festival", v, lic) for v, lic in FESTIVAL_VOICES.items()
                if v in have]
    if _espeak_lib() is not None:
        vdir = _espeak_variant_dir()
        variants = [v for v in ESPEAK_VARIANTS if vdir is None or (vdir / v).is_file()]
        for lang in ESPEAK_LANGS:
            for v in [""] + variants:
                name = lang + ("+" + v if v else "")
                out.append(Voice(f"espeak:{name}", "espeak", name, ESPEAK_LICENCE))
    return out


def _espeak_variant_dir() -> Path | None:
    for p in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v",
              "/usr/share/espeak-ng-data/voices/!v", "/usr/lib/aarch64-linux-gnu/espeak-ng-data/voices/!v"):
        if Path(p).is_dir():
            return Path(p)
    return None


def synthesize(voice: Voice, text: str, rate: float = 1.0, pitch: float = 1.0):
    """(audio 16 kHz float32, phones [[ARPAbet, start, end], ...]) for `text` in `voice`."""
    with tempfile.TemporaryDirectory(prefix="tts_") as tmp:
        audio, phones = _ENGINES[voice.engine](voice, text, rate, pitch, tmp)
    return audio, phones
