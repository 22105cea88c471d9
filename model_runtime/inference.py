"""Windowed inference and the whole runtime request: audio + conditions in, RESULT.npz out.

The network runs over overlapping windows blended with raised-cosine cross-fades, so memory is
bounded by one window plus the outputs, whatever the clip length. Output frames are resampled to
the request's frame rate (expression linearly, jaw by quaternion slerp); frame 0 is the audio time
`audio_start_s`. The result file is written atomically (model_runtime.safe_write): on any error,
cancel or kill an existing file at the output path is left byte for byte.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .audio import SAMPLE_RATE, load_audio
from .conditions import build_condition_track, identity_index, resample_track
from .errors import EmoteInputError
from .safe_write import hold_point, refuse_overwriting_input, replacing
from .networks.audio_encoders import normalise_audio

Progress = Callable[[str, int, int], None]

WINDOW_FRAMES = 504  # 20.16 s at 25 fps; a multiple of 8 (the latent squash factor)
OVERLAP_FRAMES = 64  # 2.56 s cross-fade
MAX_FPS = 1000.0

# Loaded models by checkpoint spec, kept for the warm `serve` loop:
# spec -> (model, config, model_id, file stamp), least recently used first.
_MODEL_CACHE: dict[str, tuple[torch.nn.Module, dict, str, tuple]] = {}
MAX_CACHED_MODELS = 2


WHOLE_CLIP_NORMALISATION = "whole_clip_zero_mean_unit_variance"


def needs_normalised_audio(config: dict) -> bool:
    """Whether the model expects the whole clip at zero mean and unit variance (as in training)."""
    return (_audio_encoder(config) == "wav2vec2"
            or config.get("audio_normalisation") == WHOLE_CLIP_NORMALISATION)


def predict(
    model: torch.nn.Module,
    config: dict,
    audio16k: np.ndarray,
    condition: np.ndarray,
    progress: Progress | None = None,
    window_frames: int | None = None,
    overlap_frames: int = OVERLAP_FRAMES,
) -> np.ndarray:
    """Run `model` over the clip in overlapping windows; returns (T, D) float32, T = condition rows.

    Wav2vec2 models, and models whose config says `audio_normalisation:
    whole_clip_zero_mean_unit_variance` (ours are trained so), get the whole clip normalised first
    (zero mean, unit variance); other log-mel models get the raw waveform. A config whose
    `inference.audio_framing` is "whole_frames" (converted official checkpoints) has the audio cut
    to the T whole frames first, as the official code does, so a partial last frame changes
    nothing. Windows are `window_frames` long: by default the config's
    `inference.single_pass_frames` (1200 for official checkpoints: one pass as far as the official
    code goes), else WINDOW_FRAMES. Threads are the caller's business (torch.set_num_threads).
    """
    from .checkpoints import WHOLE_FRAMES, inference_settings

    settings = inference_settings(config)
    if window_frames is None:
        window_frames = settings["single_pass_frames"] or WINDOW_FRAMES
    audio = np.asarray(audio16k, dtype=np.float32).reshape(-1)
    cond = np.asarray(condition, dtype=np.float32)
    n_frames = int(cond.shape[0])
    hop_samples = int(round(config.get("sample_rate", SAMPLE_RATE) / config.get("fps", 25)))
    if n_frames < 1 or audio.shape[0] < n_frames * hop_samples:
        raise ValueError(f"{n_frames} condition rows need at least {n_frames * hop_samples} "
                         f"samples, got {audio.shape[0]}")
    if settings["audio_framing"] == WHOLE_FRAMES:
        audio = audio[:n_frames * hop_samples]
    if needs_normalised_audio(config):
        audio = normalise_audio(audio)
    starts = window_starts(n_frames, window_frames, overlap_frames)
    device = _model_device(model)
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    weight_sum = np.zeros(n_frames, dtype=np.float64)
    try:
        with torch.inference_mode():
            for i, start in enumerate(starts):
                last = i == len(starts) - 1
                stop = n_frames if last else start + window_frames
                length = stop - start
                # The last window also takes the samples past the last whole frame (as a
                # single pass over the clip would).
                a_stop = audio.shape[0] if last else stop * hop_samples
                a = torch.from_numpy(audio[start * hop_samples:a_stop]).to(device)[None]
                c = torch.from_numpy(cond[start:stop]).to(device)[None]
                y = model(a, c)[0].float().cpu().numpy()
                if y.shape[0] != length:
                    raise RuntimeError(f"model returned {y.shape[0]} frames for a window of "
                                       f"{length}")
                if out is None:
                    out = np.zeros((n_frames, y.shape[1]), dtype=np.float64)
                w = crossfade_weights(length, overlap_frames, first=i == 0, last=last)
                out[start:stop] += y * w[:, None]
                weight_sum[start:stop] += w
                if progress:
                    progress("inference", i + 1, len(starts))
    finally:
        model.train(was_training)
    return (out / weight_sum[:, None]).astype(np.float32)


def window_starts(n_frames: int, window_frames: int = WINDOW_FRAMES,
                  overlap_frames: int = OVERLAP_FRAMES, align: int = 8) -> list[int]:
    """First frame of each window: hops of window - overlap, all on multiples of `align` (the
    model's 8-frame latent grid stays the same in every window); the last window runs to the end
    and is at most window + align - 1 frames long."""
    if window_frames <= overlap_frames or overlap_frames < 1:
        raise ValueError("need window_frames > overlap_frames >= 1")
    if window_frames % align or overlap_frames % align:
        raise ValueError(f"window and overlap must be multiples of {align} frames")
    if n_frames <= window_frames:
        return [0]
    hop = window_frames - overlap_frames
    last = (n_frames - window_frames) // align * align
    starts = list(range(0, last, hop))
    starts.append(last)
    return starts


def crossfade_weights(length: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """Per-frame blend weights of one window: raised-cosine ramps over `overlap` frames at the
    inner edges, 1 elsewhere; strictly positive so every frame has weight."""
    w = np.ones(length, dtype=np.float64)
    ramp_len = min(overlap, length)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len) + 0.5) / ramp_len)
    if not first:
        w[:ramp_len] = np.minimum(w[:ramp_len], ramp)
    if not last:
        w[length - ramp_len:] = np.minimum(w[length - ramp_len:], ramp[::-1])
    return w


def resample_rotations(axis_angle, src_fps: float, dst_fps: float, n_dst: int) -> np.ndarray:
    """Resample (N, 3) axis-angle rotations from src_fps to dst_fps by quaternion slerp (frame k at
    k/fps, held beyond the ends); takes the short way between neighbouring frames."""
    aa = np.asarray(axis_angle, dtype=np.float64).reshape(-1, 3)
    q = _aa_to_quat(aa)
    for k in range(1, q.shape[0]):  # same hemisphere as the previous frame: shortest arcs
        if np.dot(q[k], q[k - 1]) < 0:
            q[k] = -q[k]
    pos = np.clip(np.arange(int(n_dst)) * (float(src_fps) / float(dst_fps)), 0, q.shape[0] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, q.shape[0] - 1)
    t = pos - lo
    q0, q1 = q[lo], q[hi]
    dot = np.clip(np.sum(q0 * q1, axis=1), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    safe = np.where(small, 1.0, sin_t)
    a = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    b = np.where(small, t, np.sin(t * theta) / safe)
    qt = a[:, None] * q0 + b[:, None] * q1
    qt /= np.linalg.norm(qt, axis=1, keepdims=True)
    return _quat_to_aa(qt)


def _aa_to_quat(aa: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(aa, axis=1)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 for tiny angles
    scale = np.where(angle > 1e-8, np.sin(half) / np.maximum(angle, 1e-300), 0.5)
    return np.concatenate([np.cos(half)[:, None], aa * scale[:, None]], axis=1)


def _quat_to_aa(q: np.ndarray) -> np.ndarray:
    q = np.where(q[:, :1] < 0, -q, q)  # w >= 0: angle in [0, pi]
    vec = q[:, 1:]
    s = np.linalg.norm(vec, axis=1)
    angle = 2.0 * np.arctan2(s, q[:, 0])
    scale = np.where(s > 1e-8, angle / np.maximum(s, 1e-300), 2.0)
    return vec * scale[:, None]


def get_model(spec: str | os.PathLike) -> tuple[torch.nn.Module, dict, str]:
    """Load (and cache) a checkpoint: "default" or a folder. Returns (model, config, model_id).

    A cached model is reloaded when its files change on disk; at most MAX_CACHED_MODELS stay.
    """
    from .checkpoints import default_model_dir, load_checkpoint

    key = "default" if str(spec) == "default" else str(Path(spec).expanduser().resolve())
    folder = default_model_dir() if key == "default" else Path(key)
    stamp = _folder_stamp(folder)
    cached = _MODEL_CACHE.pop(key, None)
    if cached is None or cached[3] != stamp:
        model, config = load_checkpoint(key)
        model.eval()
        model_id = "default" if key == "default" else Path(key).name
        cached = (model, config, model_id, stamp)
    _MODEL_CACHE[key] = cached  # most recently used last
    while len(_MODEL_CACHE) > MAX_CACHED_MODELS:
        _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
    return cached[:3]


def _folder_stamp(folder: Path) -> tuple:
    """(name, size, mtime) of a checkpoint folder's files: changes when it is re-saved."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                            for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def run_request(request: dict, out_path: str | os.PathLike, progress: Progress | None = None,
                extra: dict | None = None) -> dict:
    """DESIGN.md step 3: check the request, load model and audio, infer, resample, write
    RESULT.npz atomically at `out_path`. Returns a short summary (frames, fps, model_id).

    Nothing at `out_path` is touched unless the whole run succeeds; an output path that is the
    audio itself is refused first. `extra` arrays are stored beside the result's own (batch
    records the settings that made each result)."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise EmoteInputError("bad_request", f"The output path {out_path} is a folder; give a "
                              "file name such as RESULT.npz.")
    req = validate_request(request)
    refuse_overwriting_input(out_path, {"audio file": req["audio"]})
    if progress:
        progress("load_model", 0, 1)
    model, config, model_id = get_model(req["model"])
    if progress:
        progress("load_model", 1, 1)
    hold_point("inference", out_path.name)
    result = generate_result(req, model, config, model_id, progress)
    result.update(extra or {})
    if progress:
        progress("write", 0, 1)
    write_result(result, out_path)
    if progress:
        progress("write", 1, 1)
    return {"out": str(out_path), "frames": int(result["exp"].shape[0]), "fps": req["fps"],
            "model_id": model_id}


def generate_result(request: dict, model: torch.nn.Module, config: dict, model_id: str,
                    progress: Progress | None = None) -> dict:
    """The RESULT.npz arrays for a request, with a model already loaded."""
    req = validate_request(request)
    fps = req["fps"]
    model_fps = float(config.get("fps", 25))
    sample_rate = int(config.get("sample_rate", SAMPLE_RATE))
    if sample_rate != SAMPLE_RATE:
        raise EmoteInputError("bad_checkpoint", f"The model expects {sample_rate} Hz audio; the "
                              f"runtime feeds {SAMPLE_RATE} Hz. Use a model made for this runtime.")
    if progress:
        progress("load_audio", 0, 1)
    audio = load_audio(req["audio"], req["audio_start_s"], req["audio_end_s"], fps=fps)
    if progress:
        progress("load_audio", 1, 1)
    duration = audio.shape[0] / SAMPLE_RATE
    expected = int(math.floor(duration * fps + 0.5))
    n_out = req["frame_count"] if req["frame_count"] is not None else expected
    if abs(n_out - expected) > 1:
        raise EmoteInputError(
            "bad_request",
            f"frame_count is {n_out}, but the audio span is {duration:.3f} s, which is {expected} "
            f"frames at {fps:g} fps. Check the strip's length, trims and the scene frame rate.",
        )
    n_model = int(audio.shape[0] // round(SAMPLE_RATE / model_fps))
    if n_model < 1:
        raise EmoteInputError("too_short", f"The audio span is {duration * 1000:.1f} ms; the model "
                              f"needs at least {1000 / model_fps:.0f} ms. Use a longer strip.")
    for name, rows in (("emotion.weights", len(req["emotion_weights"])),
                       ("intensity", len(req["intensity"]))):
        if rows != 1 and abs(rows - n_out) > 1:
            raise EmoteInputError(
                "bad_request",
                f"{name} has {rows} rows but the result has {n_out} frames; give one row per "
                "output frame (or a single row for a constant value).",
            )
    cond_cfg = config.get("conditions", {})
    identities = list(cond_cfg.get("identities", ["default"]))
    ident = identity_index(req["identity"], identities)
    condition = build_condition_track(
        req["emotion_names"], req["emotion_weights"], req["intensity"], fps, model_fps, n_model,
        ident, len(identities))
    pred = predict(model, config, audio, condition, progress)
    exp_names = [str(n) for n in config.get("output", {}).get("exp_names", [])]
    n_exp = len(exp_names)
    if pred.shape[1] != n_exp + 3:
        raise EmoteInputError("bad_checkpoint", f"The model outputs {pred.shape[1]} channels but "
                              f"its config names {n_exp} expressions + 3 jaw; it is inconsistent.")
    exp = resample_track(pred[:, :n_exp], model_fps, fps, n_out).astype(np.float32)
    jaw = resample_rotations(pred[:, n_exp:], model_fps, fps, n_out).astype(np.float32)
    exp, jaw, exp_names, life = _with_alive(req, audio, fps, exp.reshape(n_out, n_exp), jaw,
                                            exp_names)
    return {
        "fps": np.float64(fps),
        "exp": exp,
        "jaw": jaw,
        "head": life["head"],
        "gaze": life["gaze"],
        "exp_names": np.array(exp_names, dtype=str),
        "model_id": np.array(str(model_id)),
        "head_id": np.array(str(config.get("output", {}).get("head_id", ""))),
    }


def _with_alive(req: dict, audio: np.ndarray, fps: float, exp: np.ndarray, jaw: np.ndarray,
                exp_names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Blinks into exp's eyeBlink channels, head and gaze tracks (model_runtime.alive), then the
    request's strength controls (model_runtime.strengths); all zero / unchanged when off."""
    from . import alive, strengths

    life = alive.make_tracks(audio, fps, exp.shape[0], req["alive"])
    if req["alive"]["blinks"] > 0:
        exp, exp_names = alive.combine_blinks(exp, exp_names, life["blink"])
    if not strengths.is_neutral(req["strengths"]):
        tuned = strengths.apply({"exp": exp, "jaw": jaw, "fps": fps, "exp_names": exp_names},
                                req["strengths"])
        exp, jaw = tuned["exp"], tuned["jaw"]
    return exp, jaw, exp_names, life


def write_result(result: dict, out_path: str | os.PathLike) -> None:
    """Write the arrays to `out_path` via a temporary file beside it + os.replace (safe_write);
    an unwritable folder is `unwritable_output`."""
    with replacing(out_path) as fh:
        np.savez(fh, **result)


def validate_request(request) -> dict:
    """Check a request dict (DESIGN.md contract) and return it normalised; bad_request names the
    field that is wrong. Already-normalised requests pass through unchanged."""
    if isinstance(request, _Validated):
        return request
    if not isinstance(request, dict):
        raise EmoteInputError("bad_request", "The request must be a JSON object.")

    def bad(field: str, what: str) -> EmoteInputError:
        return EmoteInputError("bad_request", f"Request field {field!r}: {what}")

    audio = request.get("audio")
    if not isinstance(audio, str) or not audio:
        raise bad("audio", "give the path of the audio file as a string.")
    start = request.get("audio_start_s", 0.0)
    start = 0.0 if start is None else start
    if not _finite_number(start) or start < 0:
        raise bad("audio_start_s", f"must be a number of seconds >= 0, got {start!r}.")
    end = request.get("audio_end_s")
    if end is not None and (not _finite_number(end) or end <= start):
        raise bad("audio_end_s", f"must be null (end of file) or a number of seconds after "
                  f"audio_start_s ({start}), got {end!r}.")
    fps = request.get("fps")
    if not _finite_number(fps) or not 0 < fps <= MAX_FPS:
        raise bad("fps", f"must be the output frame rate, a number between 0 and {MAX_FPS:g}, "
                  f"got {fps!r}.")
    frame_count = request.get("frame_count")
    if frame_count is not None:
        if isinstance(frame_count, float) and frame_count.is_integer():
            frame_count = int(frame_count)
        if not isinstance(frame_count, int) or isinstance(frame_count, bool) or frame_count < 1:
            raise bad("frame_count", f"must be a whole number >= 1 (or null), got "
                      f"{request.get('frame_count')!r}.")
    model = request.get("model", "default")
    model = "default" if model in (None, "") else model
    if not isinstance(model, str):
        raise bad("model", "must be \"default\" or the path of a checkpoint folder.")
    identity = request.get("identity")
    if identity is not None and not isinstance(identity, str):
        raise bad("identity", f"must be a speaking style name or null, got {identity!r}.")
    emotion = request.get("emotion")
    if emotion is None:
        names, weights = ["neutral"], [[1.0]]
    else:
        if not isinstance(emotion, dict):
            raise bad("emotion", "must be an object {\"names\": [...], \"weights\": [[...], ...]}.")
        names, weights = emotion.get("names"), emotion.get("weights")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad("emotion.names", "must be a non-empty list of emotion names.")
        if not isinstance(weights, list) or not weights:
            raise bad("emotion.weights", "must be a non-empty list of rows, one per output frame.")
    intensity = request.get("intensity", [0.5])
    if _finite_number(intensity):
        intensity = [intensity]
    if not isinstance(intensity, list) or not intensity:
        raise bad("intensity", "must be a list of values in 0..1, one per output frame.")
    alive_req, strength_req = _alive_fields(request, bad)
    return _Validated({
        "alive": alive_req, "strengths": strength_req,
        "audio": audio, "audio_start_s": float(start),
        "audio_end_s": None if end is None else float(end), "fps": float(fps),
        "frame_count": frame_count, "model": model, "identity": identity,
        "emotion_names": names, "emotion_weights": weights, "intensity": intensity,
    })


def _alive_fields(request: dict, bad) -> tuple[dict, dict]:
    """The optional `alive` ({"blinks", "gaze", "head_motion": strength 0..2, "seed": int};
    absent: all off) and `strengths` ({"upper_face", "lower_face", "lip_closure": 0..2,
    "smoothing": seconds}; absent: neutral) fields."""
    from . import alive, strengths

    a = request.get("alive")
    if a is None:  # requests from before these tracks: no blinks, gaze or head motion
        a = {k: 0.0 for k in alive.TRACKS}
    if not isinstance(a, dict):
        raise bad("alive", "must be an object such as {\"blinks\": 1, \"gaze\": 1, "
                  "\"head_motion\": 1, \"seed\": 0}.")
    for k, v in a.items():
        if k not in alive.DEFAULTS:
            raise bad(f"alive.{k}", f"is not a setting; use {', '.join(alive.DEFAULTS)}.")
        if k == "seed":
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad("alive.seed", f"must be a whole number >= 0, got {v!r}.")
        elif not _finite_number(v) or not 0 <= v <= alive.MAX_STRENGTH:
            raise bad(f"alive.{k}", f"must be a strength from 0 (off) to "
                      f"{alive.MAX_STRENGTH:g}, got {v!r}.")
    s = request.get("strengths")
    if s is not None and not isinstance(s, dict):
        raise bad("strengths", "must be an object such as {\"upper_face\": 1, "
                  "\"lower_face\": 1, \"lip_closure\": 1, \"smoothing\": 0}.")
    try:
        s = strengths.normalise(s)
    except ValueError as exc:
        raise bad("strengths", f"{exc}.") from None
    return alive.settings(a), s


class _Validated(dict):
    """A request already checked and normalised by validate_request."""


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _audio_encoder(config: dict) -> str:
    return str(config.get("architecture", {}).get("audio_encoder", "logmel"))


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
