"""Cached incremental decoding equals the teacher-forced sliding-window encoder, position by
position, in float64."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from probforecast.models.gls.cached_encoder import (
    attend,
    encode_with_caches,
    key_values,
    step_with_caches,
)
from probforecast.models.gls.transformer import sliding_causal_mask


def encoder(
    layers: int = 3, width: int = 8, norm_first: bool = False, heads: int = 2, bias: bool = True
) -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        width,
        heads,
        dim_feedforward=16,
        dropout=0.1,
        batch_first=True,
        norm_first=norm_first,
        bias=bias,
    )
    encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).double().eval()
    with torch.no_grad():  # distinct, non-zero projection biases (PyTorch initialises them to 0)
        for p in encoder.parameters():
            if p.dim() == 1:
                p.normal_()
    return encoder


@pytest.mark.parametrize(
    ("window", "heads", "bias"),
    [(1, 2, True), (3, 2, True), (5, 4, True), (0, 1, True), (3, 2, False)],
)
def test_each_step_equals_the_teacher_forced_position(window, heads, bias):
    layers = encoder(heads=heads, bias=bias)
    x = torch.randn(4, 12, 8, dtype=torch.float64)
    full_window = window if window > 0 else 12
    full = layers(x, mask=sliding_causal_mask(12, full_window))
    prefix = 5
    out, caches = encode_with_caches(
        layers, x[:, :prefix], sliding_causal_mask(prefix, full_window), window
    )
    torch.testing.assert_close(out, full[:, :prefix], rtol=1e-12, atol=1e-12)
    for t in range(prefix, 12):
        step, caches = step_with_caches(layers, x[:, t : t + 1], caches, window)
        torch.testing.assert_close(step[:, 0], full[:, t], rtol=1e-12, atol=1e-12)
        kept = t + 1 if window <= 0 else min(t + 1, window - 1)
        assert all(c.shape[1] == kept for c in caches)


def test_the_caches_hold_each_layers_projected_keys_then_values():
    layers = encoder(layers=2)
    x = torch.randn(3, 6, 8, dtype=torch.float64)
    _, caches = encode_with_caches(layers, x, sliding_causal_mask(6, 4), 4)
    attn = layers.layers[0].self_attn
    w, b = attn.in_proj_weight, attn.in_proj_bias
    keys = x[:, -3:] @ w[8:16].T + b[8:16]
    values = x[:, -3:] @ w[16:].T + b[16:]
    torch.testing.assert_close(caches[0], torch.cat([keys, values], dim=-1), rtol=0, atol=1e-12)
    second_input = layers.layers[0](x, src_mask=sliding_causal_mask(6, 4))[:, -3:]
    attn = layers.layers[1].self_attn
    expected = second_input @ attn.in_proj_weight[8:].T + attn.in_proj_bias[8:]
    torch.testing.assert_close(caches[1], expected, rtol=0, atol=1e-12)


PACKED = (
    "cached decoding supports batch-first self-attention with packed projections "
    "and no bias_k/bias_v"
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: setattr(a, "batch_first", False), PACKED),
        (lambda a: setattr(a, "bias_k", nn.Parameter(torch.zeros(1, 1, 8))), PACKED),
        (lambda a: setattr(a, "_qkv_same_embed_dim", False), PACKED),
        (
            lambda a: setattr(a, "add_zero_attn", True),
            "cached decoding does not support add_zero_attn=True",
        ),
    ],
)
def test_attention_variants_it_cannot_reproduce_are_refused(change, message):
    layers = encoder(layers=1)
    change(layers.layers[0].self_attn)
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        encode_with_caches(
            layers, torch.randn(1, 3, 8, dtype=torch.float64), sliding_causal_mask(3, 2), 2
        )


def test_pre_norm_layers_and_final_norms_are_refused():
    message = (
        "cached decoding supports post-norm nn.TransformerEncoderLayer (norm_first=False); "
        "got TransformerEncoderLayer"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        encode_with_caches(
            encoder(norm_first=True),
            torch.randn(1, 3, 8, dtype=torch.float64),
            sliding_causal_mask(3, 2),
            2,
        )
    layers = encoder()
    layers.norm = nn.LayerNorm(8)
    with pytest.raises(TypeError, match="^cached decoding supports encoders without a final norm$"):
        encode_with_caches(
            layers, torch.randn(1, 3, 8, dtype=torch.float64), sliding_causal_mask(3, 2), 2
        )


def test_a_cache_list_of_the_wrong_length_is_refused():
    layers = encoder(layers=3)
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    _, caches = encode_with_caches(layers, x, sliding_causal_mask(4, 3), 3)
    with pytest.raises(ValueError, match="zip"):
        step_with_caches(layers, x[:, :1], caches[:2], 3)


def test_attention_dropout_applies_in_training_mode():
    """With attention dropout 1 every attention weight is dropped: the attended value is the
    output projection's bias alone (as nn.MultiheadAttention computes it in training)."""
    layers = encoder(layers=1)
    attn = layers.layers[0].self_attn
    attn.dropout = 1.0
    attn.train()
    x = torch.randn(2, 1, 8, dtype=torch.float64)
    keys_values = key_values(attn, torch.randn(2, 4, 8, dtype=torch.float64))
    expected = attn.out_proj.bias.expand(2, 1, 8)
    torch.testing.assert_close(attend(attn, x, keys_values), expected, rtol=0, atol=1e-12)
    attn.eval()
    assert not torch.allclose(attend(attn, x, keys_values), expected)
