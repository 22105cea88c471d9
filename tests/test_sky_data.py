"""sky_data: the RNC method-1 decoder against streams built by a small encoder here, the text
decoder on a hand-built section, and (when the Debian package is installed) the real game."""

import random
import struct

import numpy as np
import pytest

from model_runtime.training import sky_data as S


# ---------------------------------------------------------------- a minimal RNC method-1 encoder

class _BitWriter:
    """LSB-first bits in 16-bit little-endian words, each word reserved where the stream stands
    when its first bit is written, so that literal bytes can sit between words (as the decoder
    reads them)."""

    def __init__(self):
        self.out = bytearray()
        self.word_at = None
        self.used = 16

    def bits(self, value: int, n: int):
        for i in range(n):
            if self.used == 16:
                self.word_at = len(self.out)
                self.out += b"\0\0"
                self.used = 0
            if value >> i & 1:
                w = self.out[self.word_at] | self.out[self.word_at + 1] << 8 | 1 << self.used
                self.out[self.word_at:self.word_at + 2] = struct.pack("<H", w)
            self.used += 1

    def raw(self, data: bytes):
        self.out += data


def _reverse(code: int, n: int) -> int:
    return int(format(code, f"0{n}b")[::-1], 2) if n else 0


def _canonical(lengths):
    codes, code = {}, 0
    for length in range(1, 17):
        for sym, n in enumerate(lengths):
            if n == length:
                codes[sym] = (code, length)
                code += 1
        code <<= 1
    return codes


def _write_table(w: _BitWriter, lengths):
    w.bits(len(lengths), 5)
    for n in lengths:
        w.bits(n, 4)
    return _canonical(lengths)


def _write_value(w: _BitWriter, codes, v: int):
    sym = 0 if v == 0 else v.bit_length()
    code, n = codes[sym]
    w.bits(_reverse(code, n), n)
    if sym >= 2:
        w.bits(v - (1 << (sym - 1)), sym - 1)


FLAT = [4] * 16                       # 16 symbols of 4 bits: a complete code
SKEWED = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15]


def rnc_pack(blocks, tables=(FLAT, FLAT, FLAT)) -> tuple[bytes, bytes]:
    """blocks: lists of steps (literal bytes, (distance, length) or None for the last step).
    Returns (the RNC stream, the bytes it should unpack to)."""
    w, plain = _BitWriter(), bytearray()
    w.bits(0, 2)
    for steps in blocks:
        raw_c, pos_c, len_c = (_write_table(w, t) for t in tables)
        w.bits(len(steps), 16)
        for lit, match in steps:
            _write_value(w, raw_c, len(lit))
            if lit:
                w.raw(lit)
                plain += lit
            if match is not None:
                dist, n = match
                _write_value(w, pos_c, dist - 1)
                _write_value(w, len_c, n - 2)
                for _ in range(n):
                    plain.append(plain[-dist])
    body = bytes(w.out)
    head = b"RNC\x01" + struct.pack(">IIHH", len(plain), len(body), S.crc16(bytes(plain)),
                                    S.crc16(body)) + bytes([0, len(blocks)])
    return head + body, bytes(plain)


# ---------------------------------------------------------------- tests without game data

def test_crc16_check_value():
    assert S.crc16(b"123456789") == 0xBB3D      # CRC-16/ARC's published check value
    assert S.crc16(b"") == 0


def test_literal_only_stream():
    packed, plain = rnc_pack([[(b"Beneath a Steel Sky", None)]])
    assert S.rnc_unpack(packed) == plain == b"Beneath a Steel Sky"


def test_matches_including_overlapping_copies():
    packed, plain = rnc_pack([[(b"abc", (3, 6)), (b"xyz", (1, 5)), (b"", (4, 2)), (b"!", None)]])
    assert plain == b"abcabcabcxyzzzzzzzz!"
    assert S.rnc_unpack(packed) == plain


def test_random_streams_several_blocks_and_skewed_codes():
    rng = random.Random(7)
    for tables in ((FLAT, FLAT, FLAT), (SKEWED, FLAT, SKEWED), (FLAT[:9], SKEWED, FLAT)):
        blocks, size = [], 0
        for _ in range(3):
            steps = []
            for k in range(rng.randint(1, 40)):
                lit = bytes(rng.randrange(256) for _ in range(rng.randint(0 if size else 1, 20)))
                size += len(lit)
                steps.append([lit, None])
                dist = rng.randint(1, min(size, 200))
                n = rng.randint(2, 40)
                steps[-1][1] = (dist, n)
                size += n
            steps.append((bytes(rng.randrange(256) for _ in range(rng.randint(0, 5))), None))
            size += len(steps[-1][0])
            blocks.append(steps)
        packed, plain = rnc_pack(blocks, tables)
        assert S.rnc_unpack(packed) == plain


def test_crc_and_format_errors():
    packed, plain = rnc_pack([[(b"hello hello", (6, 5)), (b".", None)]])
    assert S.rnc_unpack(packed) == plain
    broken = bytearray(packed)
    broken[20] ^= 0x01                            # a byte of the packed data
    with pytest.raises(S.RncError):
        S.rnc_unpack(bytes(broken))
    with pytest.raises(S.RncError):
        S.rnc_unpack(b"XYZ\x01" + packed[4:])
    with pytest.raises(S.RncError):
        S.rnc_unpack(packed[:-3])
    bad_out = bytearray(packed)
    bad_out[12:14] = struct.pack(">H", S.crc16(plain) ^ 1)
    with pytest.raises(S.RncError, match="unpacked"):
        S.rnc_unpack(bytes(bad_out))


def test_directory_and_packed_file():
    packed, plain = rnc_pack([[(b"\x80\x81\x7f" * 10, (30, 60)), (b"", None)]])
    header = bytearray(22)
    total = 22 + len(plain)
    header[0:2] = struct.pack("<H", 0x80 | ((total >> 16) << 8))
    header[12:14] = struct.pack("<H", total & 0xFFFF)
    dsk = bytes(16) + bytes(header) + packed
    dnr = struct.pack("<I", 2)
    # file 50001 at byte 16 (given in 16-byte units, bit 23), packed; 60000 stored, at byte 0
    dnr += struct.pack("<H", 50001) + (1 | 0x800000).to_bytes(3, "little") \
        + (len(dsk) - 16).to_bytes(3, "little")
    dnr += struct.pack("<H", 60000) + (0).to_bytes(3, "little") \
        + (16 | 0x800000).to_bytes(3, "little")
    entries = S.read_directory(dnr)
    assert entries[50001].offset == 16 and entries[50001].size == len(dsk) - 16
    assert entries[60000].stored and entries[60000].size == 16
    disk = S.SkyDisk.__new__(S.SkyDisk)
    disk.entries, disk.data = entries, dsk
    loaded = disk.load(50001)
    assert loaded[:22] == bytes(header) and loaded[22:] == plain
    assert disk.load(60000) == bytes(16)


def _text_section(lines: list[bytes]) -> bytes:
    """A text section file in the game's layout, coded with the 0.0372 tree."""
    enc = {}
    for (n, code), b in S._tree_codes().items():
        enc.setdefault(b, (n, code))
    streams = []
    for line in lines:
        bits = "".join(format(enc[b][1], f"0{enc[b][0]}b") for b in line + b"\0")
        bits += "0" * (-len(bits) % 2)
        streams.append(bits)
    n_blocks = (len(lines) + 31) // 32
    skip_table = 4 + 2 * (n_blocks - 1)
    bit_data = skip_table + len(lines)
    steps = [len(b) // 2 for b in streams]
    block_lens = [sum(steps[32 * k:32 * k + 32]) for k in range(n_blocks - 1)]
    assert max(steps) < 128
    allbits = "".join(streams)
    allbits += "0" * (-len(allbits) % 8 + 16)
    data = struct.pack("<HH", skip_table, bit_data)
    data += struct.pack(f"<{len(block_lens)}H", *block_lens) + bytes(steps)
    return data + int(allbits, 2).to_bytes(len(allbits) // 8, "big")


def test_text_section_decoding_across_blocks():
    lines = [f"Line {i}: What YOU want?".encode() for i in range(40)]
    lines[3] = b"It's titled `PUSSIES ON PARADE'!"
    lines[33] = b"\x8e\x8f\x92"
    assert S.decode_text_section(_text_section(lines)) == lines


def test_clean_text():
    assert S.clean_text(b"It's titled `PUSSIES ON PARADE'!") == "It's titled 'PUSSIES ON PARADE'!"
    assert S.clean_text(b"\x8e\x8f\x92") == ""
    assert S.clean_text(b"  Hey,\tyou*  - there...  ") == "Hey, you - there..."


def test_resampling_length_and_scale():
    a = S.pcm8_to_16k(bytes([128]) * 11025)
    assert a.dtype == np.float32 and abs(len(a) - 16000) <= 1 and np.abs(a).max() < 1e-6


# ---------------------------------------------------------------- the installed game

def test_installed_game():
    if not S.installed():
        pytest.skip("beneath-a-steel-sky is not installed (apt-get install beneath-a-steel-sky)")
    disk = S.SkyDisk()
    lines = S.english_lines(disk)
    numbers = S._speech_numbers(disk, lines)
    with_text = [t for t in numbers if S.clean_text(lines[t])]
    assert len(with_text) >= 3000
    sample = set(numbers[::len(numbers) // 12])
    seen = 0
    for t in sample:
        data = disk.load(S.speech_file(t >> 12, t & 0xFFF))
        audio = S.pcm8_to_16k(data[S.HEADER:])
        seconds = len(audio) / 16000
        assert 0.3 <= seconds <= 20, (t, seconds)
        rms = float(np.sqrt(np.mean(audio ** 2)))
        assert rms > 0.01, (t, rms)
        # speech is not a steady tone or noise: its 50 ms frames vary widely in level
        frames = audio[: len(audio) // 800 * 800].reshape(-1, 800)
        energy = np.sqrt((frames ** 2).mean(1))
        assert energy.max() > 3 * energy.min() + 1e-4, t
        seen += 1
    assert seen >= 10
    clip = next(S.speech_clips(disk=disk, limit=1))
    assert clip.id == f"sky:{numbers[0]}" and clip.text and clip.group == "s0"
