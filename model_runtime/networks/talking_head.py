"""EMOTE's talking head (v2 structure): audio + per-frame condition track -> FLAME-style motion.

audio encoder -> Linear(feature_dim, seq_dim); Linear(cond_dim, style_dim) on the condition track;
concatenate; post-norm transformer layer(s) with periodic ALiBi; Linear -> latent_dim; squash 8
frames into one latent; FLINT decoder; crop to T. All sizes come from the `arch` dict (see
`checkpoints.default_arch` / `checkpoints.tiny_config`); `arch["attention"]` ("trained", the
default, or "official-demo"; see networks.alibi) applies to both attention layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .alibi import AlibiEncoderLayer
from .attention_modes import TRAINED
from .audio_encoders import build_audio_encoder
from .flint import FlintDecoder

ARCH_DEFAULTS = {
    "seq_dim": 128, "style_dim": 128, "n_heads": 8, "ff_dim": 256, "dropout": 0.25,
    "period": 30, "decoder_layers": 1, "latent_dim": 128, "flint_quant": 3, "flint_heads": 8,
    "flint_ff": 384, "flint_layers": 1, "attention": TRAINED,
}


class TalkingHead(nn.Module):
    """forward(audio (B, S) 16 kHz, condition (B, T, cond_dim)) -> motion (B, T, output_dim).

    The FLINT decoder's BatchNorms stay in eval mode (frozen motion prior) unless
    `self.flint.freeze_batchnorm(False)` is called.
    """

    def __init__(self, arch: dict, zero_init: bool = False):
        super().__init__()
        a = {**ARCH_DEFAULTS, **arch}
        self.arch = a
        self.audio_encoder = build_audio_encoder(a)
        d_model = int(a["seq_dim"]) + int(a["style_dim"])
        latent = int(a["latent_dim"])
        self.sequence_encoder = nn.Linear(self.audio_encoder.feature_dim, int(a["seq_dim"]))
        self.style = nn.Linear(int(a["cond_dim"]), int(a["style_dim"]))
        self.decoder_layers = nn.ModuleList([
            AlibiEncoderLayer(d_model, int(a["n_heads"]), int(a["ff_dim"]), float(a["dropout"]),
                              period=int(a["period"]), attention=str(a["attention"]))
            for _ in range(int(a["decoder_layers"]))])
        self.decoder_out = nn.Linear(d_model, latent)
        self.frames_per_latent = 2 ** int(a["flint_quant"])
        self.squasher = nn.Linear(self.frames_per_latent * latent, latent)
        self.flint = FlintDecoder(a)
        self.flint.freeze_batchnorm(True)
        if zero_init:
            nn.init.zeros_(self.decoder_out.weight)
            nn.init.zeros_(self.decoder_out.bias)
        self.output_dim = int(a["output_dim"])
        self.cond_dim = int(a["cond_dim"])

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """The audio encoder's cacheable input features (log-mel or wav2vec2 CNN output)."""
        return self.audio_encoder.features(audio)

    def forward(self, audio: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.audio_features(audio), condition)

    def forward_features(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Like forward, from `audio_features(audio)` instead of raw audio (training cache)."""
        T = condition.shape[1]
        return self.decode(self.audio_encoder.forward_features(features, T), condition)

    def decode(self, encoded: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Encoded audio (B, T, feature_dim) + condition (B, T, cond_dim) -> (B, T, output_dim)."""
        B, T, _ = condition.shape
        if encoded.shape[1] != T:
            raise ValueError(f"audio features have {encoded.shape[1]} frames, condition has {T}")
        x = torch.cat([self.sequence_encoder(encoded), self.style(condition.to(encoded.dtype))], -1)
        for layer in self.decoder_layers:
            x = layer(x)
        x = self.decoder_out(x)
        k = self.frames_per_latent
        pad = (-T) % k
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        z = self.squasher(x.reshape(B, (T + pad) // k, k * x.shape[-1]))
        return self.flint(z)[:, :T]
