"""Audio input for the runtime: read a span of a sound file as float32 mono at 16 kHz.

numpy, scipy and soundfile only. Only the requested span is read from disk, so a short strip of a
long recording stays cheap. Every bad input raises EmoteInputError with a kind and a fix.
"""

from __future__ import annotations

import math
import os
from math import gcd

import numpy as np

from .errors import EmoteInputError, EmoteWarning

SAMPLE_RATE = 16000
MIN_RATE = 8000
MAX_RATE = 192000
# Containers people often try that libsndfile cannot decode: say "convert it" instead of "damaged".
_OTHER_AUDIO_EXTENSIONS = {
    ".m4a", ".aac", ".mp4", ".m4b", ".wma", ".webm", ".mkv", ".mov", ".avi", ".amr", ".ac3",
    ".ape", ".wv", ".alac", ".dts", ".mka", ".3gp",
}
_CONVERT_HINT = "Convert it to WAV or FLAC (for example `ffmpeg -i INPUT output.wav`) and use that."


def load_audio(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    fps: float | None = None,
) -> np.ndarray:
    """Read `path` from `start_s` to `end_s` (None = end of file) as float32 mono at SAMPLE_RATE.

    With `fps` given, a span shorter than one frame at that rate raises `too_short`.
    """
    path = os.fspath(path)
    _check_span(start_s, end_s)
    sf = _soundfile()
    handle = _open(sf, path)
    with handle:
        rate = int(handle.samplerate)
        if not MIN_RATE <= rate <= MAX_RATE:
            raise EmoteInputError(
                "unsupported_format",
                f"The audio file {path} has a sample rate of {rate} Hz; only {MIN_RATE} to "
                f"{MAX_RATE} Hz are supported. Resample it (for example `ffmpeg -i INPUT -ar "
                f"48000 output.wav`) and use that.",
            )
        total = int(handle.frames)
        if total <= 0:
            raise EmoteInputError(
                "empty_audio", f"The audio file {path} contains no samples. Use a file with sound.")
        first = int(round(start_s * rate))
        if first >= total:
            raise EmoteInputError(
                "bad_request",
                f"The audio span starts at {start_s:.3f} s but {path} is only "
                f"{total / rate:.3f} s long. Move the strip's start (or its trim) inside the file.",
            )
        last = total if end_s is None else min(total, int(round(end_s * rate)))
        if last <= first:
            raise EmoteInputError(
                "empty_audio",
                f"The audio span {start_s:.3f}..{end_s} s of {path} holds no samples. Make the "
                "strip longer.",
            )
        # A little real audio either side keeps the resampling filter from fading the edges.
        pad = _resample_margin(rate)
        lead, trail = min(pad, first), min(pad, total - last)
        try:
            handle.seek(first - lead)
            data = handle.read(lead + last - first + trail, dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile decode errors mid-file
            raise EmoteInputError(
                "unreadable_file",
                f"The audio file {path} could not be decoded ({exc}). It may be damaged. "
                + _CONVERT_HINT,
            ) from exc
    if data.shape[0] <= lead:
        raise EmoteInputError(
            "empty_audio", f"No samples could be read from {path} in the requested span.")
    n_span = min(last - first, data.shape[0] - lead)  # a decoder may deliver fewer frames
    span = data[lead:lead + n_span]
    if not (np.isfinite(span.min()) and np.isfinite(span.max())):  # NaN/inf propagate; no copy
        raise EmoteInputError(
            "bad_samples",
            f"The audio file {path} contains invalid samples (NaN or infinity) in the requested "
            "span. Re-export it from your audio editor as 16- or 24-bit WAV.",
        )
    for margin in (data[:lead], data[lead + n_span:]):  # bad samples outside the span: silence
        margin[~np.isfinite(margin)] = 0.0
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    audio = resample(mono, rate, SAMPLE_RATE)
    g = gcd(rate, SAMPLE_RATE)
    offset = lead * (SAMPLE_RATE // g) // (rate // g)
    audio = audio[offset:offset + -(-n_span * (SAMPLE_RATE // g) // (rate // g))]
    if fps is not None and audio.shape[0] < SAMPLE_RATE / float(fps):
        raise EmoteInputError(
            "too_short",
            f"The audio span is {audio.shape[0] / SAMPLE_RATE * 1000:.1f} ms long, shorter than "
            f"one frame at {fps:g} fps. Use a longer strip.",
        )
    return audio


def resample(audio: np.ndarray, src_rate: int, dst_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling by the exact rational factor dst/src (reduced by their gcd)."""
    audio = np.asarray(audio, dtype=np.float32)
    if src_rate == dst_rate:
        return np.ascontiguousarray(audio)
    from scipy.signal import resample_poly

    g = gcd(int(src_rate), int(dst_rate))
    out = resample_poly(audio, int(dst_rate) // g, int(src_rate) // g)
    return np.ascontiguousarray(out, dtype=np.float32)


def _resample_margin(rate: int) -> int:
    """Margin in input samples (>= 10 ms) that maps onto a whole number of 16 kHz samples."""
    step = rate // gcd(rate, SAMPLE_RATE)
    return step * -(-int(0.01 * rate) // step)


def _check_span(start_s: float, end_s: float | None) -> None:
    if not _is_number(start_s) or start_s < 0:
        raise EmoteInputError(
            "bad_request",
            f"The audio start time must be a number of seconds >= 0, got {start_s!r}.")
    if end_s is not None:
        if not _is_number(end_s):
            raise EmoteInputError(
                "bad_request", f"The audio end time must be a number of seconds, got {end_s!r}.")
        if end_s <= start_s:
            raise EmoteInputError(
                "bad_request",
                f"The audio span ends ({end_s:.3f} s) at or before it starts ({start_s:.3f} s). "
                "Give an end after the start, or leave the end empty to play to the end of file.",
            )


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: the libsndfile library itself is missing
        raise EmoteInputError(
            "unsupported_format",
            f"The runtime cannot read audio because soundfile/libsndfile is missing ({exc}). "
            "Reinstall the runtime's requirements (`pip install soundfile`).",
        ) from exc
    return soundfile


def _open(sf, path: str):
    """Open with soundfile, turning every failure into the matching EmoteInputError."""
    if not os.path.exists(path):
        raise EmoteInputError(
            "missing_file",
            f"The audio file {path} does not exist. Check the strip's file path (relink the "
            "sound in Blender if the file was moved).",
        )
    if os.path.isdir(path):
        raise EmoteInputError(
            "unreadable_file", f"{path} is a folder, not an audio file. Choose the sound file.")
    if os.path.getsize(path) == 0:
        raise EmoteInputError(
            "empty_audio", f"The audio file {path} is empty (0 bytes). Use a file with sound.")
    try:
        with open(path, "rb") as fh:  # says "permission denied" where libsndfile says "damaged"
            head = fh.read(65536)
    except PermissionError as exc:
        raise EmoteInputError(
            "unreadable_file",
            f"The audio file {path} cannot be opened: permission denied. Give yourself read "
            "access to it (for example `chmod u+r FILE`) or copy it somewhere you can read.",
        ) from exc
    except OSError as exc:
        raise EmoteInputError(
            "unreadable_file", f"The audio file {path} cannot be opened ({exc.strerror or exc})."
        ) from exc
    ext = os.path.splitext(path)[1].lower()
    try:
        handle = sf.SoundFile(path)
    except Exception as exc:
        if ext == ".mp3" and "MP3" not in sf.available_formats():
            raise EmoteInputError(
                "unsupported_format",
                f"{path} is an MP3 file, but the installed libsndfile "
                f"({getattr(sf, '__libsndfile_version__', '?')}) cannot decode MP3. Upgrade "
                "soundfile (`pip install -U soundfile`, 0.12.1 or newer bundles MP3 support) or "
                "convert the file to WAV.",
            ) from exc
        if ext in _OTHER_AUDIO_EXTENSIONS:
            raise EmoteInputError(
                "unsupported_format",
                f"{path} is a {ext[1:].upper()} file, which the runtime cannot decode (it reads "
                f"WAV, FLAC, OGG and MP3). {_CONVERT_HINT}",
            ) from exc
        raise EmoteInputError(
            "unreadable_file",
            f"{path} could not be read as audio ({exc}). The file may be damaged or not a sound "
            f"file. {_CONVERT_HINT}",
        ) from exc
    _warn_if_cut_short(path, head, handle)
    return handle


def wav_declared_data(head: bytes) -> tuple[int, int, int] | None:
    """(offset of the sample data, data size the header declares, bytes per frame) of a
    RIFF/WAVE file, from its first bytes; None when it is not a WAV or the header says "unknown"
    (0 or 0xFFFFFFFF, as streaming writers leave it)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = int.from_bytes(head[pos + 20:pos + 22], "little")
        if chunk == b"data":
            ok = 0 < size < 0xFFFFFFFF and block_align > 0
            return (pos + 8, size, block_align) if ok else None
        pos += 8 + size + (size & 1)
    return None


def _warn_if_cut_short(path: str, head: bytes, handle) -> None:
    """Warn (EmoteWarning) when a WAV's data ends before the length its header gives."""
    declared = wav_declared_data(head)
    if declared is None or not handle.samplerate:
        return
    offset, size, block_align = declared
    present = os.path.getsize(path) - offset
    if present >= size:
        return
    said_s = size / block_align / handle.samplerate
    have_s = max(present, 0) / block_align / handle.samplerate
    import warnings

    warnings.warn(EmoteWarning(
        f"The WAV file {path} is cut short: its header says {said_s:.3f} s of audio "
        f"({size} bytes) but the data ends after {have_s:.3f} s ({present} bytes). Only the "
        "audio that is there is used; re-export or re-copy the file if the rest is missing."),
        stacklevel=3)
