"""Audio encoders: 16 kHz audio (B, S) -> per-frame features (B, T, feature_dim).

Both encoders split into `features(audio)` (the part a training cache can store) and
`forward_features(feats, num_frames)`; `forward(audio, num_frames)` runs both.
`LogMelEncoder` is our small, fast encoder; `Wav2Vec2Encoder` is EMOTE's wav2vec2-base (needs the
optional `transformers` package).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EmoteInputError

LOGMEL_DEFAULTS = {
    "sample_rate": 16000, "n_fft": 512, "win": 400, "hop": 320, "n_mels": 80,
    "fmin": 0.0, "fmax": 8000.0, "logmel_hidden": 128, "logmel_dilations": [1, 2],
    "logmel_channels": 256, "logmel_dilations_25": [1, 2], "logmel_shift": 5.0,
    "logmel_scale": 4.0,
}


def normalise_audio(x):
    """Whole-clip zero mean / unit variance (eps 1e-7 in the sqrt), as wav2vec2's processor does.

    Accepts a numpy array or a torch tensor, (S,) or (B, S) (each row normalised on its own).
    """
    if isinstance(x, np.ndarray):
        x = x.astype(np.float32)
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + 1e-7)).astype(np.float32)
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + 1e-7)


def hz_to_mel(f):
    """HTK mel scale of frequencies in Hz (float64 array)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Inverse of hz_to_mel."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """HTK-scale triangular mel filters, (n_fft // 2 + 1, n_mels), no area normalisation."""
    to_mel, to_hz = hz_to_mel, mel_to_hz
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower[None]) / (centre - lower)[None]
    down = (upper[None] - freqs[:, None]) / (upper - centre)[None]
    return torch.from_numpy(np.clip(np.minimum(up, down), 0.0, None)).float()


def _interpolate_frames(feats: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, F, C) -> (B, num_frames, C), linear, align_corners=True (EMOTE's resampling)."""
    if feats.shape[1] == num_frames:
        return feats
    x = F.interpolate(feats.transpose(1, 2), size=num_frames, mode="linear", align_corners=True)
    return x.transpose(1, 2)


class LogMelEncoder(nn.Module):
    """Log-mel spectrogram (50 fps) -> dilated residual convs (`logmel_hidden` channels) ->
    resample to T (25 fps) -> 1x1 conv to `logmel_channels` -> dilated residual convs.

    Receptive field about +-200 ms with the defaults (+-80 ms at 50 fps, +-120 ms at 25 fps);
    no dependency beyond torch.
    """

    def __init__(self, arch: dict):
        super().__init__()
        p = {**LOGMEL_DEFAULTS, **{k: v for k, v in arch.items() if k in LOGMEL_DEFAULTS}}
        self.p = p
        h, c = int(p["logmel_hidden"]), int(p["logmel_channels"])
        self.feature_dim = c
        self.register_buffer("window", torch.hann_window(int(p["win"])), persistent=False)
        self.register_buffer("mel_fb", mel_filterbank(int(p["sample_rate"]), int(p["n_fft"]),
                                                      int(p["n_mels"]), float(p["fmin"]),
                                                      float(p["fmax"])), persistent=False)
        self.conv_in = nn.Conv1d(int(p["n_mels"]), h, 3, padding=1, padding_mode="replicate")
        self.blocks = nn.ModuleList([nn.Conv1d(h, h, 3, padding=d, dilation=d, padding_mode="replicate")
                                     for d in p["logmel_dilations"]])
        self.proj = nn.Conv1d(h, c, 1)
        self.post = nn.ModuleList([nn.Conv1d(c, c, 3, padding=d, dilation=d, padding_mode="replicate")
                                   for d in p["logmel_dilations_25"]])

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, S) -> log-mel (B, F, n_mels), F = 1 + S // hop, log(mel + 1e-5)."""
        n_fft = int(self.p["n_fft"])
        if audio.shape[-1] <= n_fft // 2:  # reflect padding needs a few samples
            audio = F.pad(audio, (0, n_fft // 2 + 1 - audio.shape[-1]))
        spec = torch.stft(audio.float(), n_fft, hop_length=int(self.p["hop"]),
                          win_length=int(self.p["win"]), window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, n_fft/2+1, F)
        mel = torch.matmul(power.transpose(1, 2), self.mel_fb)
        return torch.log(mel + 1e-5)

    def forward_features(self, feats: torch.Tensor, num_frames: int) -> torch.Tensor:
        """log-mel (B, F, n_mels) -> (B, num_frames, feature_dim)."""
        x = (feats + float(self.p["logmel_shift"])) / float(self.p["logmel_scale"])
        h = F.gelu(self.conv_in(x.transpose(1, 2)))
        for conv in self.blocks:
            h = h + F.gelu(conv(h))
        h = _interpolate_frames(h.transpose(1, 2), num_frames).transpose(1, 2)
        h = F.gelu(self.proj(h))
        for conv in self.post:
            h = h + F.gelu(conv(h))
        return h.transpose(1, 2)

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.forward_features(self.features(audio), num_frames)


def _import_transformers():
    try:
        import transformers  # noqa: F401
        from transformers import Wav2Vec2Config, Wav2Vec2Model
    except ImportError as exc:
        raise EmoteInputError(
            "missing_dependency",
            "This model uses the wav2vec2 audio encoder, which needs the 'transformers' package. "
            "Install the optional extra into the runtime's environment: "
            "pip install 'emote-blender[official]' (or: pip install transformers).") from exc
    return Wav2Vec2Config, Wav2Vec2Model


class Wav2Vec2Encoder(nn.Module):
    """EMOTE's wav2vec2-base: CNN features (~50 fps, 512-d) resampled to T frames *before* the
    feature projection and transformer; returns the last hidden state (B, T, hidden_size).

    `arch["wav2vec2_config"]` overrides Wav2Vec2Config fields (empty = wav2vec2-base sizes); the
    weights come from our checkpoint, never from a download.
    """

    def __init__(self, arch: dict):
        super().__init__()
        Wav2Vec2Config, Wav2Vec2Model = _import_transformers()
        overrides = dict(arch.get("wav2vec2_config") or {})
        config = Wav2Vec2Config(**overrides)
        self.model = Wav2Vec2Model(config)
        self.feature_dim = int(config.hidden_size)
        self.min_samples = int(self.receptive_field(config))

    @staticmethod
    def receptive_field(config) -> int:
        """Samples the CNN needs for one output frame (400 for wav2vec2-base)."""
        rf = 1
        for k, s in zip(reversed(config.conv_kernel), reversed(config.conv_stride)):
            rf = (rf - 1) * s + k
        return rf

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, S), already normalised -> CNN features (B, F, conv_dim[-1])."""
        if audio.shape[-1] < self.min_samples:
            audio = F.pad(audio, (0, self.min_samples - audio.shape[-1]))
        return self.model.feature_extractor(audio.float()).transpose(1, 2)

    def forward_features(self, feats: torch.Tensor, num_frames: int) -> torch.Tensor:
        """CNN features (B, F, 512) -> last hidden state (B, num_frames, hidden_size)."""
        x = _interpolate_frames(feats, num_frames)
        hidden, _ = self.model.feature_projection(x)
        return self.model.encoder(hidden).last_hidden_state

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.forward_features(self.features(audio), num_frames)


def build_audio_encoder(arch: dict) -> nn.Module:
    """The encoder named by `arch["audio_encoder"]` ("logmel" or "wav2vec2")."""
    kind = arch.get("audio_encoder", "logmel")
    if kind == "logmel":
        return LogMelEncoder(arch)
    if kind == "wav2vec2":
        return Wav2Vec2Encoder(arch)
    raise EmoteInputError("bad_checkpoint", f"Unknown audio encoder {kind!r} in the model's "
                          "config.json; expected 'logmel' or 'wav2vec2'.")


__all__ = ["normalise_audio", "hz_to_mel", "mel_to_hz", "mel_filterbank", "LogMelEncoder", "Wav2Vec2Encoder",
           "build_audio_encoder", "LOGMEL_DEFAULTS"]
