"""ALiBi attention biases and a post-norm transformer layer that applies them at any length.

EMOTE's talking head uses a "periodic" ALiBi bias (-slope * floor(|i - j| / period)); the FLINT
motion prior uses plain ALiBi (-slope * |i - j|). Neither is stored in a checkpoint: both are
rebuilt here for whatever sequence length comes in (no 1200-frame cap as in the official code).

Two attention semantics (`attention=`):
- "trained": the float bias is added to the attention scores, as during EMOTE's training (and in
  PyTorch's slow path); our own models use this.
- "official-demo": what the official demo computes under torch >= 2.0. Its eval/no-grad (or
  frozen) `nn.TransformerEncoderLayer` runs PyTorch's fast path, which reads a float mask as a
  boolean one (any non-zero entry blocked): a hard band, |i - j| < period with a period, only
  i == j without one (pytorch issue 107084).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention_modes import ATTENTION_MODES, TRAINED

# Query rows per attention block: bounds the memory of very long sequences (bias and scores are
# (heads, rows, T) per block instead of (heads, T, T)).
_QUERY_BLOCK = 256
_CACHE: dict = {}
_CACHE_SIZE = 16
_CACHE_MAX_NUMEL = 2_000_000  # larger biases are rebuilt each time (memory over speed)



def _slopes(n: int) -> list[float]:
    if n & (n - 1) == 0:
        return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]
    below = 1 << (n.bit_length() - 1)  # largest power of two under n
    return _slopes(below) + _slopes(2 * below)[0::2][:n - below]


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes 2^(-8/n * (h+1)): 1/2, 1/4, ... 1/256 for 8 heads. For a head count that
    is not a power of two, the ALiBi paper's rule (and EMOTE's): the slopes of the power of two
    below, then every other slope of the power of two above."""
    if n_heads < 1:
        raise ValueError(f"need at least one attention head, got {n_heads}")
    return torch.tensor(_slopes(int(n_heads)))


def alibi_bias(n_heads: int, n_query: int, n_key: int | None = None, period: int = 0,
               query_offset: int = 0, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive bias (n_heads, n_query, n_key): -slope*|i-j|, or -slope*floor(|i-j|/period).

    `query_offset` is the absolute index of the first query row (for block-wise attention).
    Recently used biases are cached (inference repeats the same window length).
    """
    n_key = n_query if n_key is None else n_key
    key = (n_heads, n_query, n_key, int(period or 0), query_offset, str(device), dtype)
    bias = _CACHE.get(key)
    if bias is None:
        i = torch.arange(query_offset, query_offset + n_query, device=device, dtype=torch.float32)
        j = torch.arange(n_key, device=device, dtype=torch.float32)
        dist = (i[:, None] - j[None, :]).abs_()
        if period and period > 1:
            dist = torch.floor_(dist / period)
        slopes = alibi_slopes(n_heads).to(device=device, dtype=dtype)
        bias = -slopes[:, None, None] * dist.to(dtype)[None]
        if bias.numel() <= _CACHE_MAX_NUMEL:
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = bias
    return bias


def band_mask(n_query: int, n_key: int, period: int = 0, query_offset: int = 0,
              device=None) -> torch.Tensor:
    """Boolean (n_query, n_key), True where the ALiBi bias is zero: |i - j| < period (period > 1)
    or i == j (no period). The "official-demo" attention: where PyTorch's fast path lets a float
    ALiBi mask through."""
    i = torch.arange(query_offset, query_offset + n_query, device=device)
    j = torch.arange(n_key, device=device)
    dist = (i[:, None] - j[None, :]).abs_()
    return dist < period if period and period > 1 else dist == 0


def check_attention_mode(mode: str) -> str:
    if mode not in ATTENTION_MODES:
        raise ValueError(f"unknown attention mode {mode!r}; expected one of {ATTENTION_MODES}")
    return mode


class AlibiEncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (batch first, GELU) with an ALiBi bias.

    Same parameters and names as `torch.nn.TransformerEncoderLayer(d_model, n_heads, ff_dim,
    activation="gelu", batch_first=True)`, so weights move between the two one to one; the
    attention runs in query blocks so any length fits in memory. `attention` picks the float bias
    ("trained") or the hard band of PyTorch's fast path ("official-demo", see module doc).
    """

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float = 0.0,
                 period: int = 0, attention: str = TRAINED):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, ff_dim)
        self.linear2 = nn.Linear(ff_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.n_heads = n_heads
        self.period = period
        self.attention = check_attention_mode(attention)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H = self.n_heads
        q, k, v = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias).chunk(3, -1)
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        p = self.self_attn.dropout if self.training else 0.0
        outs = []
        for start in range(0, T, _QUERY_BLOCK):
            qb = q[:, :, start:start + _QUERY_BLOCK]
            if self.attention == TRAINED:
                mask = alibi_bias(H, qb.shape[2], T, self.period, start, x.device, x.dtype)[None]
            else:
                mask = band_mask(qb.shape[2], T, self.period, start, x.device)
            outs.append(F.scaled_dot_product_attention(qb, k, v, attn_mask=mask, dropout_p=p))
        out = torch.cat(outs, 2).transpose(1, 2).reshape(B, T, C)
        return self.self_attn.out_proj(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, d_model) -> (B, T, d_model)."""
        x = self.norm1(x + self.dropout1(self._attention(x)))
        ff = self.linear2(self.dropout(F.gelu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ff))

