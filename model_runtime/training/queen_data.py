"""Flight of the Amazon Queen (Debian `flight-of-the-amazon-queen`) as a speech source: the
`queen.1c` resource table, its MP3 speech clips and the game's own line texts.

Facts used (read from the file, see /work/shared/MEASURED_FACTS.md): a 15-byte header (`QTBL`,
6-byte version, 2 flag bytes, a compression byte, big-endian u16 entry count), then 21-byte
entries (12-byte name, bundle byte, big-endian u32 offset and size). `.SB` entries are MP3 at
11,025 Hz. Clip names say who speaks:

- `NNHHHHJp` / `NNHHHHPp`: line `HHHH` (hex) of conversation `NN`, part `p`; `J` is Joe King (the
  player), `P` the person Joe talks to (which one is found from the conversation the text matches).
- `JOEiiiip`: Joe describing an object, line `iiii` of `QUEEN2.JAS`, part `p`.
- `CnnnX_llp`-style names: a line of cutscene `CnnnX.CUT` (speaker not in the name).
- Names with `SSSS`/`XXXX`: filler and sound clips.

Texts: `QUEEN2.JAS` holds one CRLF line per object description; `.DOG` (conversations) and
`.CUT` (cutscenes) hold length-prefixed strings. A line's parts are separated by `*NN` codes
(two characters after a star: a gesture or facing code), each part one speech clip.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUEEN_1C = Path("/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c")
QUEEN_LICENCE = ("flight-of-the-amazon-queen 1.0.0-9 (Debian main): game content (C) John "
                 "Passfield and Steven Stamatiadis, Flight-of-the-Amazon-Queen-License (free "
                 "redistribution; modification allowed with a notice that it is modified)")
_HEADER = 15
_ENTRY = 21
_DIALOGUE = re.compile(r"^(\d\d)([0-9A-F]{4})([JP])(\d)$")
_JOE_DESC = re.compile(r"^JOE(\d{4})(\d)$")
_CODE = re.compile(r"\*[0-9A-Z]{2}")


@dataclass(frozen=True)
class Entry:
    name: str
    offset: int
    size: int


class QueenArchive:
    """Random access to the entries of `queen.1c` (the file is read once, ~54 MB)."""

    def __init__(self, path: Path | str = QUEEN_1C):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install the Debian package "
                                    "flight-of-the-amazon-queen (apt-get install "
                                    "flight-of-the-amazon-queen)")
        self.data = path.read_bytes()
        if self.data[:4] != b"QTBL":
            raise ValueError(f"{path} is not a Flight of the Amazon Queen resource file "
                             "(no QTBL header)")
        n = struct.unpack(">H", self.data[13:15])[0]
        self.entries: dict[str, Entry] = {}
        for i in range(n):
            raw = self.data[_HEADER + _ENTRY * i: _HEADER + _ENTRY * (i + 1)]
            name = raw[:12].rstrip(b"\0").decode("latin-1")
            off, size = struct.unpack(">II", raw[13:21])
            self.entries[name] = Entry(name, off, size)

    def read(self, name: str) -> bytes:
        e = self.entries[name]
        return self.data[e.offset: e.offset + e.size]

    def speech_names(self) -> list[str]:
        """Clip names (without `.SB`), sorted."""
        return sorted(n[:-3] for n in self.entries if n.endswith(".SB"))

    def audio16k(self, clip: str) -> np.ndarray:
        """The clip decoded (libsndfile MP3) and resampled to 16 kHz float32 mono."""
        import soundfile as sf
        from scipy.signal import resample_poly

        a, sr = sf.read(io.BytesIO(self.read(clip + ".SB")), dtype="float32", always_2d=True)
        a = a.mean(1)
        if sr != 16000:
            g = np.gcd(16000, int(sr))
            a = resample_poly(a, 16000 // g, int(sr) // g)
        return a.astype(np.float32)


def clip_kind(name: str) -> dict:
    """What a clip's name says: kind (dialogue|description|cutscene|other), speaker code, keys."""
    m = _DIALOGUE.match(name)
    if m:
        return {"kind": "dialogue", "talk": m.group(1), "line": int(m.group(2), 16),
                "who": "joe" if m.group(3) == "J" else "person", "part": int(m.group(4))}
    m = _JOE_DESC.match(name)
    if m:
        return {"kind": "description", "line": int(m.group(1)), "who": "joe",
                "part": int(m.group(2))}
    if "SSSS" in name or "XXXX" in name:
        return {"kind": "other"}
    if name.startswith("BLANK"):
        return {"kind": "other"}
    return {"kind": "cutscene", "who": "unknown"}


def split_parts(line: str) -> list[str]:
    """A game line split at its `*NN` codes into spoken parts (empty parts dropped)."""
    parts = [p.strip() for p in _CODE.split(line)]
    return [p for p in parts if re.search(r"[A-Za-z0-9]", p)]


def _pascal_strings(blob: bytes) -> list[str]:
    """Length-prefixed printable strings holding lower-case words (the texts of DOG/CUT files).

    A string counts only where it ends at a non-printable byte, the end of the file, or the
    length byte of another such string (texts are often stored back to back); this rejects
    windows that start at a stray printable byte in front of the real length byte.
    """
    n = len(blob)
    memo: dict[int, bool] = {}

    def printable(c: int) -> bool:
        return 32 <= c < 127

    def valid(i: int, depth: int = 0) -> bool:
        if i in memo:
            return memo[i]
        L = blob[i]
        ok = False
        if L >= 2 and i + 1 + L <= n and all(printable(c) for c in blob[i + 1: i + 1 + L]):
            j = i + 1 + L
            ok = j == n or not printable(blob[j]) or (depth < 50 and valid(j, depth + 1))
        memo[i] = ok
        return ok

    out, i = [], 0
    while i < n:
        if valid(i):
            s = blob[i + 1: i + 1 + blob[i]]
            if re.search(rb"[a-z]{2}", s):
                out.append(s.decode("ascii"))
            i += 1 + blob[i]
            continue
        i += 1
    return out


def game_lines(arc: QueenArchive) -> list[dict]:
    """Every spoken part in the game's texts: [{text, source, line, part}].

    `source` is `QUEEN2.JAS` (Joe's descriptions, `line` 1-based as in the JOE clip names) or the
    DOG/CUT resource name (`line` is the string's order in that file).
    """
    out = []
    jas = arc.read("QUEEN2.JAS").decode("latin-1").split("\r\n")
    for i, line in enumerate(jas, start=1):
        for k, p in enumerate(split_parts(line), start=1):
            out.append({"text": p, "source": "QUEEN2.JAS", "line": i, "part": k})
    for name in sorted(arc.entries):
        if name.endswith((".DOG", ".CUT")):
            for i, s in enumerate(_pascal_strings(arc.read(name))):
                if s.lower().endswith((".sam", ".cut", ".dog", ".bbk", ".pcx")):
                    continue
                for k, p in enumerate(split_parts(s), start=1):
                    out.append({"text": p, "source": name, "line": i, "part": k})
    return out


def character_of(source: str) -> str:
    """The character a conversation file belongs to: BOB3.DOG -> bob, ORACLE1.DOG -> oracle."""
    stem = source.rsplit(".", 1)[0].lower()
    return re.sub(r"\d+$", "", stem) or stem
