"""The two attention semantics of our ALiBi layer against torch's own TransformerEncoderLayer, built
with EMOTE's official hyper-parameters and random weights:

- "official-demo" equals torch's native fast path (eval + no_grad, or a frozen layer), which reads
  the official float mask as a boolean one;
- "trained" equals torch's slow path (`torch.backends.mha.set_fastpath_enabled(False)`), which adds
  the float bias as it was during training.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from emote.model_runtime.networks.alibi import AlibiEncoderLayer, alibi_slopes, band_mask

torch.set_num_threads(1)

# (d_model, heads, feed-forward, period): the talking head's decoder layer (feature_dim 128 x 2 for
# the concatenated style, FF = d_model, periodic bias with period 30) and FLINT's decoder layer.
TALKING_HEAD = (256, 8, 256, 30)
FLINT = (128, 8, 384, 0)


def official_float_mask(n_heads: int, T: int, period: int, batch: int) -> torch.Tensor:
    """The float mask the official code hands to its encoder, (batch * heads, T, T): symmetric,
    -slope_h * (|i - j| // period) for the talking head, -slope_h * |i - j| for FLINT; slopes
    1/2 ... 1/256 for 8 heads. Written from the definition, independently of alibi_bias."""
    slopes = torch.tensor([0.5 ** (h + 1) for h in range(n_heads)]) if n_heads == 8 else \
        alibi_slopes(n_heads)
    idx = torch.arange(T)
    dist = (idx[:, None] - idx[None, :]).abs()
    steps = dist // period if period > 1 else dist
    return (-slopes[:, None, None] * steps[None].float()).repeat(batch, 1, 1)


def _official_layer(d_model, heads, ff, seed) -> torch.nn.TransformerEncoder:
    """nn.TransformerEncoder(nn.TransformerEncoderLayer(...), 1) as the official code builds it
    (post-norm, GELU, dropout 0.25, batch_first), with random weights incl. biases and norms
    (matrices at about torch's own init scale)."""
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff, dropout=0.25,
                                             activation="gelu", batch_first=True)
    enc = torch.nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) * p.shape[1] ** -0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
            else:
                p.copy_(0.5 * torch.randn_like(p))
    return enc.eval()


@contextlib.contextmanager
def _slow_path():
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


@pytest.mark.parametrize("T", [7, 50, 600])
@pytest.mark.parametrize("shape", [TALKING_HEAD, FLINT], ids=["talking_head", "flint"])
def test_modes_match_torch_fast_and_slow_paths(shape, T):
    d_model, heads, ff, period = shape
    ref = _official_layer(d_model, heads, ff, seed=T)
    x = torch.randn(2, T, d_model, generator=torch.Generator().manual_seed(T))
    mask = official_float_mask(heads, T, period, batch=2)
    with torch.no_grad():
        fast = ref(x, mask=mask)
        with _slow_path():
            slow = ref(x, mask=mask)
    if T > period + 1:  # there are non-zero bias entries: the two torch paths must differ
        assert (fast - slow).abs().max() > 1e-3, "torch's fast path was not taken"
    ours = {}
    for mode in ("official-demo", "trained"):
        layer = AlibiEncoderLayer(d_model, heads, ff, dropout=0.25, period=period,
                                  attention=mode).eval()
        layer.load_state_dict(ref.layers[0].state_dict())
        with torch.no_grad():
            ours[mode] = layer(x)
    assert (ours["official-demo"] - fast).abs().max() < 1e-5
    assert (ours["trained"] - slow).abs().max() < 1e-5


def test_frozen_layer_takes_the_fast_path_even_with_grad():
    """Why FLINT's decoder is hard-banded even in official training: its parameters are frozen."""
    d_model, heads, ff, period = FLINT
    ref = _official_layer(d_model, heads, ff, seed=3).requires_grad_(False)
    x = torch.randn(1, 40, d_model)
    mask = official_float_mask(heads, 40, period, batch=1)
    frozen = ref(x, mask=mask)  # grad mode on, no parameter needs grad
    ours = AlibiEncoderLayer(d_model, heads, ff, period=period, attention="official-demo").eval()
    ours.load_state_dict(ref.layers[0].state_dict())
    with torch.no_grad():
        assert (ours(x) - frozen).abs().max() < 1e-5


def test_band_mask_is_where_the_bias_is_zero():
    talking = band_mask(70, 70, period=30)
    assert talking[0, 29] and not talking[0, 30] and talking[69, 40] and not talking[69, 39]
    assert torch.equal(band_mask(5, 5), torch.eye(5, dtype=torch.bool))
    assert torch.equal(band_mask(3, 70, 30, query_offset=40), talking[40:43])


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="official-demo"):
        AlibiEncoderLayer(16, 2, 16, attention="fast")


def test_slopes_follow_alibi_rule_for_any_head_count():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -k for k in range(1, 9)]))
    # 6 heads: the 4-head slopes, then every other 8-head slope
    expected = [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]
    assert torch.allclose(alibi_slopes(6), torch.tensor(expected))
