"""FLINT motion prior: a temporal VAE whose decoder is EMOTE's (frozen) output layer.

The decoder turns one latent frame per 2^q output frames back into motion (B, T, D); the
encoder (training only) maps motion to latent means and log-variances. Sizes come from `arch`:
`latent_dim` (128), `flint_heads` (8), `flint_ff` (384), `flint_quant` (q = 3, i.e. x8),
`output_dim` (D). The decoder's attention follows `attention` ("trained" or "official-demo",
see networks.alibi); the encoder (training only) always uses the float bias.
"""

from __future__ import annotations

import torch
from torch import nn

from .alibi import AlibiEncoderLayer
from .attention_modes import TRAINED


def _conv_block(c_in: int, c_out: int, stride: int = 1, transposed: bool = False,
                pool: bool = False) -> nn.Sequential:
    """[conv k5 | LeakyReLU(0.2) | BatchNorm (| MaxPool 2)], indices as in the official layout."""
    if transposed:
        conv = nn.ConvTranspose1d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)
    else:
        conv = nn.Conv1d(c_in, c_out, 5, stride=stride, padding=2, padding_mode="replicate")
    layers = [conv, nn.LeakyReLU(0.2), nn.BatchNorm1d(c_out)]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return nn.Sequential(*layers)


class _FrozenBatchNormMixin:
    """`freeze_batchnorm(True)` keeps every BatchNorm in eval mode, even after `.train()`."""

    bn_frozen: bool = False

    def freeze_batchnorm(self, frozen: bool = True) -> None:
        self.bn_frozen = frozen
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        if self.bn_frozen:
            for m in self.modules():  # type: ignore[attr-defined]
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


class FlintDecoder(_FrozenBatchNormMixin, nn.Module):
    """Latents (B, L, latent_dim) -> motion (B, L * 2^q, output_dim)."""

    def __init__(self, arch: dict, zero_init_last: bool = False):
        super().__init__()
        d = int(arch.get("latent_dim", 128))
        q = int(arch.get("flint_quant", 3))
        self.expander = nn.ModuleList([_conv_block(d, d, transposed=True)]
                                      + [_conv_block(d, d) for _ in range(q - 1)])
        self.decoder_linear_embedding = nn.Linear(d, d)
        self.decoder_transformer = nn.ModuleList([AlibiEncoderLayer(
            d, int(arch.get("flint_heads", 8)), int(arch.get("flint_ff", 384)),
            float(arch.get("flint_dropout", 0.0)), period=0,
            attention=str(arch.get("attention", TRAINED)))
            for _ in range(int(arch.get("flint_layers", 1)))])
        self.post_transformer_linear = nn.Linear(d, d)
        self.cross_smooth_layer = nn.Conv1d(d, int(arch["output_dim"]), 5, padding=2)
        if zero_init_last:
            nn.init.zeros_(self.post_transformer_linear.weight)
            nn.init.zeros_(self.post_transformer_linear.bias)
        self.upsampling = 2 ** q

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.transpose(1, 2)
        for i, block in enumerate(self.expander):
            x = block(x)
            if i > 0:
                x = x.repeat_interleave(2, dim=2)
        x = self.decoder_linear_embedding(x.transpose(1, 2))
        for layer in self.decoder_transformer:
            x = layer(x)
        x = self.post_transformer_linear(x)
        return self.cross_smooth_layer(x.transpose(1, 2)).transpose(1, 2)


class FlintEncoder(_FrozenBatchNormMixin, nn.Module):
    """Motion (B, T, output_dim) with T a multiple of 2^q -> (mean, logvar), each (B, T/2^q, d)."""

    def __init__(self, arch: dict):
        super().__init__()
        d = int(arch.get("latent_dim", 128))
        q = int(arch.get("flint_quant", 3))
        self.squasher = nn.ModuleList([_conv_block(int(arch["output_dim"]), d, stride=2)]
                                      + [_conv_block(d, d, pool=True) for _ in range(q - 1)])
        self.encoder_linear_embedding = nn.Linear(d, d)
        self.encoder_transformer = nn.ModuleList([AlibiEncoderLayer(
            d, int(arch.get("flint_heads", 8)), int(arch.get("flint_ff", 384)),
            float(arch.get("flint_dropout", 0.0)), period=0)
            for _ in range(int(arch.get("flint_layers", 1)))])
        self.mean = nn.Linear(d, d)
        self.logvar = nn.Linear(d, d)
        self.downsampling = 2 ** q

    def forward(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if motion.shape[1] % self.downsampling:
            raise ValueError(f"FLINT encoder needs a multiple of {self.downsampling} frames, "
                             f"got {motion.shape[1]}")
        x = motion.transpose(1, 2)
        for block in self.squasher:
            x = block(x)
        x = self.encoder_linear_embedding(x.transpose(1, 2))
        for layer in self.encoder_transformer:
            x = layer(x)
        return self.mean(x), self.logvar(x)


class FlintVAE(nn.Module):
    """Encoder + decoder for training the motion prior; `forward` returns (recon, mean, logvar)."""

    def __init__(self, arch: dict):
        super().__init__()
        self.motion_encoder = FlintEncoder(arch)
        self.motion_decoder = FlintDecoder(arch)

    @staticmethod
    def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, sample: bool) -> torch.Tensor:
        """z = mean + exp(logvar / 2) * noise when sampling, else the mean."""
        if not sample:
            return mean
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def forward(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.motion_encoder(motion)
        z = self.reparameterise(mean, logvar, self.training)
        return self.motion_decoder(z), mean, logvar

    @staticmethod
    def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)), averaged over all latent entries."""
        return -0.5 * torch.mean(1 + logvar - mean.pow(2) - logvar.exp())


__all__ = ["FlintDecoder", "FlintEncoder", "FlintVAE"]
