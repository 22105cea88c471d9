"""Beneath a Steel Sky (Debian `beneath-a-steel-sky`, CD version 0.0372) as a speech source: the
game's acted English speech clips, each paired with the English text of its line.

The formats (learnt from ScummVM's `engines/sky`, reimplemented here):

- `sky.dnr`: a little-endian u32 entry count, then 8-byte entries: u16 file number, u24 offset
  (bit 23 set: the low 23 bits count 16-byte units), u24 flags (low 22 bits: stored size; bit 22:
  a packed file's unpacked form leaves out its 22-byte header; bit 23: stored as is).
- `sky.dsk`: the files. Each one starts with a 22-byte header of eleven u16s (`flag`, ...,
  `s_tot_size` at byte 12, ...). A file without flags bit 23 whose header flag has bit 7 set holds
  an RNC ProPack (method 1) stream after the header; it unpacks to
  `((flag & 0xff00) << 8) | s_tot_size` bytes, the header included unless flags bit 22 is set.
- Speech for text number `t` (section `t >> 12`, line `t & 0xfff`) is file
  `50000 + SECTION_FIRST_SPEECH[section] + line`: after its header, unsigned 8-bit mono PCM at
  11,025 Hz. Sections 0-6 have speech; 7 (menus, the control panel) has none.
- English texts of section `s` are file `60600 + s`: u16 offset of a table of per-line skip bytes
  (32 per block), u16 offset of the bit data, then one u16 per 32-line block: the block's length.
  Lengths and skips count 2-bit steps (a skip byte with bit 7 set counts 8 steps per unit of its
  low 7 bits). A line is a NUL-terminated string of Huffman codes read most significant bit
  first; the code tree belongs to the game's executable, so `_TREE_LEAVES`/`_TREE_DEPTHS` below
  re-express the one of version 0.0372 (leaves left to right with their depths).
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import EmoteInputError

SKY_DIR = Path("/usr/share/scummvm/beneath-a-steel-sky")
SKY_LICENCE = (
    "beneath-a-steel-sky (Debian main, freeware CD version 0.0372): all game content (C) "
    "Revolution Software Ltd. Beneath-a-Steel-Sky-License: the game may be distributed for free "
    "(a reasonable copying fee, or inclusion in a larger, possibly commercial, software "
    "distribution such as a Linux distribution is allowed) with its readme and copyright "
    "notices intact; no fee may be charged for the game itself; it may be modified and modified "
    "versions distributed under the same terms if prominently marked as modified; provided AS IS "
    "without warranty (see /usr/share/doc/beneath-a-steel-sky/copyright).")
HEADER = 22
SAMPLE_RATE = 11025
SPEECH_BASE = 50000
TEXT_BASE = 60600            # English; other languages follow in steps of 8 files
SECTION_FIRST_SPEECH = (0, 600, 1100, 2430, 3380, 4530, 5080)
MIN_CLIP_BYTES = 1024        # speech shorter than ~0.09 s: a stub, not a line
MAX_SKY_SECONDS = 30.0


def installed() -> bool:
    """Whether the game's data is where Debian's package puts it (SKY_DIR)."""
    return (SKY_DIR / "sky.dsk").is_file()

# leaf bytes of the 0.0372 text code tree in left-to-right order, and each leaf's depth
_TREE_LEAVES = (b" eaostn.ir\x00EumAlIdRNSTOhcDgLCpU!yMPvH?b'f,GBVkFqwK-WJ*zYj+Q\x85)Z\x8b<\x95~"
                b"\x8a\x87:\x7f]#xX\x91\x88`20\x831/(=\x86^39\x984}8\\\"\x90&\x8d56\x92\x8f\x8e"
                b"\x93\x8c7\x80\x81\x99$@[\x9a_>\x96\x82%\t\x9c\x97{\x94!")
_TREE_DEPTHS = bytes.fromhex(
    "0304040505050505050406060505050606060606060507070606060707070707070608080707070808070707"
    "09090808080909080808090909090a0a090a0a090b0b0a0a0a0b0b0a0b0b0a0c0c0b0c0c0b0c0c0b0b0b0c0c"
    "0c0c0d0d0c0c0c0d0d0d0d0d0d0d0d0e0e0d0e0e0e0e0f0f0e0e0e0f0f0e0f0f0f1010")


class RncError(EmoteInputError):
    """A malformed or corrupt RNC stream (a damaged game file: reinstalling the package fixes it)."""

    def __init__(self, problem: str):
        super().__init__("bad_game_data", f"Beneath a Steel Sky data: {problem}; reinstall the "
                         "game (apt-get install --reinstall beneath-a-steel-sky)")


# ---------------------------------------------------------------- CRC-16 (poly 0xA001, LSB first)

def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        v = byte
        for _ in range(8):
            v = (v >> 1) ^ 0xA001 if v & 1 else v >> 1
        table.append(v)
    return table


_CRC = _crc_table()


def crc16(data: bytes) -> int:
    """The RNC checksum: CRC-16 with reflected polynomial 0xA001 and initial value 0."""
    crc, table = 0, _CRC
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


# ---------------------------------------------------------------- RNC ProPack method 1

def _huffman_lookup(lengths: list[int]) -> tuple[list, int]:
    """A table indexed by the next `width` stream bits (LSB first) -> (symbol, code length).

    Codes are canonical: shorter first, ties by symbol order, assigned most significant bit first
    and read from the stream reversed."""
    width = max(lengths, default=0)
    if width == 0:
        return [], 0
    table: list = [None] * (1 << width)
    code = 0
    for length in range(1, width + 1):
        for sym, n in enumerate(lengths):
            if n != length:
                continue
            if code >= 1 << length:
                raise RncError("over-subscribed Huffman code")
            rev = int(format(code, f"0{length}b")[::-1], 2)
            step = 1 << length
            table[rev::step] = [(sym, length)] * (1 << (width - length))
            code += 1
        code <<= 1
    return table, width


def rnc_unpack(packed: bytes, check_crc: bool = True) -> bytes:
    """Unpack one RNC method-1 stream (`RNC\\x01` + 14 header bytes + packed data).

    The bit stream is read least significant bit first, 16-bit little-endian words at a time,
    a word only once its bits are needed; literal runs are plain bytes interleaved with it.
    Raises RncError on a bad signature, truncated data, a broken code or a CRC mismatch."""
    if len(packed) < 18 or packed[:4] != b"RNC\x01":
        raise RncError("not an RNC method 1 stream")
    out_len, in_len, crc_out, crc_in = struct.unpack_from(">IIHH", packed, 4)
    n_blocks = packed[17]
    body = packed[18:18 + in_len]
    if len(body) != in_len:
        raise RncError(f"truncated: {len(body)} of {in_len} packed bytes")
    if check_crc and crc16(body) != crc_in:
        raise RncError("packed data CRC mismatch")
    src = body + bytes(4)
    out = bytearray()
    buf = nb = pos = 0

    def bits(n: int) -> int:
        nonlocal buf, nb, pos
        if n > nb:
            buf |= (src[pos] | src[pos + 1] << 8) << nb
            pos += 2
            nb += 16
        v = buf & ((1 << n) - 1)
        buf >>= n
        nb -= n
        return v

    def read_table(previous):
        n = bits(5)
        if n == 0:               # an empty description keeps the previous table
            return previous
        if n > 16:
            raise RncError("Huffman table with more than 16 codes")
        return _huffman_lookup([bits(4) for _ in range(n)])

    bits(2)                      # two flag bits, unused by method 1
    raw_t = pos_t = len_t = ([], 0)
    for _ in range(n_blocks):
        raw_t, pos_t, len_t = read_table(raw_t), read_table(pos_t), read_table(len_t)
        tables = (raw_t, pos_t, len_t)
        count = bits(16)
        for left in range(count, 0, -1):
            values = []
            for k, (table, width) in enumerate(tables):
                if k and left == 1:
                    break        # the block's last step is a literal run only
                peek = (buf | (src[pos] | src[pos + 1] << 8) << nb) & ((1 << width) - 1)
                hit = table[peek] if width else None
                if hit is None:
                    raise RncError("invalid Huffman code")
                sym, length = hit
                if length > nb:
                    buf |= (src[pos] | src[pos + 1] << 8) << nb
                    pos += 2
                    nb += 16
                buf >>= length
                nb -= length
                if sym >= 2:
                    sym = (1 << (sym - 1)) | bits(sym - 1)
                values.append(sym)
                if k == 0 and sym:            # literal run, then refill the bit window
                    if pos + sym > in_len:
                        raise RncError("literal run past the end of the packed data")
                    out += src[pos:pos + sym]
                    pos += sym
            if len(values) == 3:
                dist, n = values[1] + 1, values[2] + 2
                start = len(out) - dist
                if start < 0:
                    raise RncError("match before the start of the output")
                if dist >= n:
                    out += out[start:start + n]
                else:
                    out += (out[start:] * (n // dist + 1))[:n]
            if len(out) > out_len:
                raise RncError("more output than the header says")
    if len(out) != out_len:
        raise RncError(f"unpacked {len(out)} bytes, header says {out_len}")
    if check_crc and crc16(out) != crc_out:
        raise RncError("unpacked data CRC mismatch")
    return bytes(out)


# ---------------------------------------------------------------- sky.dnr / sky.dsk

@dataclass(frozen=True)
class DiskEntry:
    number: int
    offset: int              # byte offset in sky.dsk
    size: int                # stored bytes
    stored: bool             # flags bit 23: kept as is, never unpacked
    headerless: bool         # flags bit 22: unpacked form leaves out the 22-byte header


def read_directory(dnr: bytes) -> dict[int, DiskEntry]:
    """The entries of a `sky.dnr` file, by file number."""
    if len(dnr) < 4:
        raise ValueError("sky.dnr is too short")
    (n,) = struct.unpack_from("<I", dnr)
    if len(dnr) < 4 + 8 * n:
        raise ValueError(f"sky.dnr holds {(len(dnr) - 4) // 8} entries, header says {n}")
    out = {}
    for i in range(n):
        number, o0, o1, o2, f0, f1, f2 = struct.unpack_from("<H6B", dnr, 4 + 8 * i)
        offset, flags = o0 | o1 << 8 | o2 << 16, f0 | f1 << 8 | f2 << 16
        pos = (offset & 0x7FFFFF) << 4 if offset & 0x800000 else offset & 0x7FFFFF
        out[number] = DiskEntry(number, pos, flags & 0x3FFFFF, bool(flags & 0x800000),
                                bool(flags & 0x400000))
    return out


class SkyDisk:
    """Random access to the files of `sky.dsk` (the file is read once, ~72 MB)."""

    def __init__(self, folder: Path | str = SKY_DIR):
        folder = Path(folder)
        if not (folder / "sky.dsk").is_file() or not (folder / "sky.dnr").is_file():
            raise FileNotFoundError(f"{folder}/sky.dsk or sky.dnr is missing: install the Debian "
                                    "package beneath-a-steel-sky (apt-get install "
                                    "beneath-a-steel-sky)")
        self.entries = read_directory((folder / "sky.dnr").read_bytes())
        self.data = (folder / "sky.dsk").read_bytes()

    def raw(self, number: int) -> bytes:
        e = self.entries[number]
        return self.data[e.offset:e.offset + e.size]

    def load(self, number: int, check_crc: bool = True) -> bytes:
        """File `number` as the game uses it: unpacked if it is RNC packed (header kept unless
        the entry says otherwise)."""
        e = self.entries[number]
        data = self.raw(number)
        if e.stored or len(data) < HEADER + 18 or not data[0] & 0x80:
            return data
        if data[HEADER:HEADER + 4] != b"RNC\x01":
            return data          # marked packed but not: the game uses it as stored
        body = rnc_unpack(data[HEADER:], check_crc)
        return body if e.headerless else data[:HEADER] + body


# ---------------------------------------------------------------- texts

def _tree_codes() -> dict[tuple[int, int], int]:
    """(code length, code value) -> byte, from the leaves and depths of a full binary tree."""
    codes, code, prev = {}, -1, 0
    for leaf, depth in zip(_TREE_LEAVES, _TREE_DEPTHS):
        code = (code + 1) << (depth - prev) if depth >= prev else (code + 1) >> (prev - depth)
        codes.setdefault((depth, code), leaf)
        prev = depth
    return codes


def _decode_walk(bits: np.ndarray, start: int, codes, max_len: int = 64 * 1024) -> bytes:
    out, code, length, i = bytearray(), 0, 0, start
    n = len(bits)
    while i < n and len(out) < max_len:
        code = code << 1 | int(bits[i])
        length += 1
        i += 1
        b = codes.get((length, code))
        if b is not None:
            if b == 0:
                return bytes(out)
            out.append(b)
            code = length = 0
    raise ValueError("text runs past the end of its section")


def decode_text_section(data: bytes, codes: dict | None = None) -> list[bytes]:
    """Every line of one text section file, as raw bytes (NUL excluded), indexed by line number.

    The skip table holds one byte per line, so the section has `bit_data - skip_table` lines in
    blocks of 32; only the lengths of all blocks but the last are stored. A line whose codes run
    off the end of the file comes back empty. `codes` maps (length, value) -> byte (most
    significant bit first); by default the code tree of version 0.0372."""
    codes = _tree_codes() if codes is None else codes
    skip_table, bit_data = struct.unpack_from("<HH", data)
    n_lens = (skip_table - 4) // 2
    block_lens = struct.unpack_from(f"<{n_lens}H", data, 4)
    n_lines = min(bit_data - skip_table, 32 * (n_lens + 1))
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    lines, steps = [], 0
    for i in range(n_lines):
        if i % 32 == 0:
            steps = sum(block_lens[:i // 32])
        try:
            lines.append(_decode_walk(bits, 8 * bit_data + 2 * steps, codes))
        except ValueError:
            lines.append(b"")
        skip = data[skip_table + i]
        steps += (skip & 0x7F) << 3 if skip & 0x80 else skip
    return lines


_SPACES = re.compile(r"\s+")


def clean_text(raw: bytes) -> str:
    """A line as plain words for alignment: control bytes and bytes above 0x7e become spaces,
    the game's opening quote (a backtick) becomes an apostrophe, other marks that are not
    punctuation are dropped, punctuation is kept. Upper-case words (the game marks stress in
    capitals: "What YOU want?") are left as they are."""
    s = "".join(chr(c) if 0x20 <= c < 0x7F else " " for c in raw).replace("`", "'")
    s = re.sub(r"[*\[\]{}<>^_`|~#@\\]", " ", s)
    return _SPACES.sub(" ", s).strip()


# ---------------------------------------------------------------- speech clips

@dataclass
class SkyClip:
    """One English speech clip and its line.

    `id` is `sky:<text number>` (text number = section << 12 | line). `group` is `s<section>`:
    the game's text section, i.e. the part of the game (act) the line belongs to, shared by many
    speakers. `block` is `s<section>b<nn>`: the 32 consecutive text numbers the line is filed
    in; a conversation's lines are mostly neighbours, but a block can hold lines of several
    characters (the player, Foster, speaks in almost every one). No speaker identity is given.
    """
    id: str
    text_number: int
    section: int
    line: int
    group: str
    block: str
    audio: np.ndarray        # float32, 16 kHz mono, in [-1, 1)
    text: str                # plain words (clean_text)
    raw_text: str            # the game's text, bytes as latin-1

    @property
    def seconds(self) -> float:
        return len(self.audio) / 16000.0


def pcm8_to_16k(pcm: bytes) -> np.ndarray:
    """Unsigned 8-bit PCM at 11,025 Hz -> float32 at 16 kHz (polyphase, 640/441)."""
    from scipy.signal import resample_poly

    a = (np.frombuffer(pcm, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    return resample_poly(a, 640, 441).astype(np.float32)


def speech_file(section: int, line: int) -> int:
    return SPEECH_BASE + SECTION_FIRST_SPEECH[section] + line


def english_lines(disk: SkyDisk) -> dict[int, bytes]:
    """text number -> raw English line, for the sections that have speech."""
    out = {}
    for section in range(len(SECTION_FIRST_SPEECH)):
        for line, raw in enumerate(decode_text_section(disk.load(TEXT_BASE + section))):
            out[section << 12 | line] = raw
    return out


def _speech_numbers(disk: SkyDisk, lines: dict[int, bytes]) -> list[int]:
    """Text numbers of the lines that have a speech file, in order."""
    out = []
    for t in sorted(lines):
        section, line = t >> 12, t & 0xFFF
        limit = (SECTION_FIRST_SPEECH[section + 1] - SECTION_FIRST_SPEECH[section]
                 if section + 1 < len(SECTION_FIRST_SPEECH) else 4096)
        if line < limit and speech_file(section, line) in disk.entries:
            out.append(t)
    return out


def speech_clips(folder: Path | str = SKY_DIR, limit: int | None = None,
                 disk: SkyDisk | None = None, check_crc: bool = True,
                 skipped: Counter | None = None) -> Iterator[SkyClip]:
    """Yield every English speech clip with its line (see SkyClip), in text-number order.

    Skipped, and counted in `skipped` when given: speech files shorter than MIN_CLIP_BYTES
    (`tiny`), lines without words (`no_text`), files that fail to unpack (`bad_file`) and clips
    over MAX_SKY_SECONDS (`too_long`). Text numbers without a speech file are never reached."""
    disk = disk or SkyDisk(folder)
    skipped = Counter() if skipped is None else skipped
    lines = english_lines(disk)
    n = 0
    for t in _speech_numbers(disk, lines):
        if limit is not None and n >= limit:
            return
        section, line = t >> 12, t & 0xFFF
        raw = lines[t].decode("latin-1")
        text = clean_text(lines[t])
        if not re.search(r"[A-Za-z0-9]", text):
            skipped["no_text"] += 1
            continue
        try:
            data = disk.load(speech_file(section, line), check_crc)
        except RncError:
            skipped["bad_file"] += 1
            continue
        pcm = data[HEADER:]
        if len(pcm) < MIN_CLIP_BYTES:
            skipped["tiny"] += 1
            continue
        if len(pcm) > MAX_SKY_SECONDS * SAMPLE_RATE:
            skipped["too_long"] += 1
            continue
        n += 1
        yield SkyClip(f"sky:{t}", t, section, line, f"s{section}", f"s{section}b{line >> 5:02d}",
                      pcm8_to_16k(pcm), text, raw)


# ---------------------------------------------------------------- command line

def dump(out: Path, limit: int | None, folder: Path | str = SKY_DIR) -> int:
    """Write `limit` clips as 16 kHz PCM16 wavs and `lines.tsv` (id, seconds, group, text)."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    rows = ["id\tseconds\tgroup\ttext"]
    for clip in speech_clips(folder, limit=limit):
        name = clip.id.replace(":", "_") + ".wav"
        sf.write(out / name, clip.audio, 16000, subtype="PCM_16")
        rows.append(f"{clip.id}\t{clip.seconds:.2f}\t{clip.block}\t{clip.text}")
    (out / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows) - 1


def stats(folder: Path | str = SKY_DIR, limit: int | None = None) -> dict:
    disk = SkyDisk(folder)
    lines = english_lines(disk)
    skipped: Counter = Counter()
    groups: Counter = Counter()
    blocks: set = set()
    seconds, n_text, durations, chars = 0.0, 0, [], []
    t0 = time.time()
    for clip in speech_clips(disk=disk, limit=limit, skipped=skipped):
        groups[clip.group] += 1
        blocks.add(clip.block)
        seconds += clip.seconds
        durations.append(clip.seconds)
        chars.append(len(clip.text))
        n_text += bool(clip.text)
    speech = [n for n in disk.entries if SPEECH_BASE <= n < SPEECH_BASE + 6000]
    intro = [n for n in disk.entries if SPEECH_BASE + 9000 <= n < SPEECH_BASE + 10000]
    corr = float(np.corrcoef(durations, chars)[0, 1]) if len(durations) > 2 else float("nan")
    return {"speech_files": len(speech), "other_5xxxx_files_no_text": len(intro),
            "english_lines": len(lines), "clips": len(durations),
            "clips_with_text": n_text, "hours": round(seconds / 3600, 3),
            "seconds_min_median_max": [round(float(x), 2) for x in
                                       np.percentile(durations or [0], [0, 50, 100])],
            "seconds_vs_characters_correlation": round(corr, 3),
            "groups": dict(sorted(groups.items())), "blocks": len(blocks),
            "skipped": dict(skipped), "pass_seconds": round(time.time() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=SKY_DIR, help="folder of sky.dsk and sky.dnr")
    ap.add_argument("--dump", type=Path, help="write wavs and lines.tsv here")
    ap.add_argument("--limit", type=int, default=None, help="at most this many clips")
    ap.add_argument("--stats", action="store_true", help="print counts over all clips")
    args = ap.parse_args(argv)
    if not args.dump and not args.stats:
        ap.error("give --dump OUT and/or --stats")
    if args.dump:
        n = dump(args.dump, args.limit, args.dir)
        print(f"wrote {n} clips and lines.tsv to {args.dump}")
    if args.stats:
        for k, v in stats(args.dir, args.limit).items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
