"""Incremental decoding of a causal, sliding-window ``nn.TransformerEncoder`` with per-layer
key/value caches.

With a causal mask in which position ``t`` attends to positions ``t - W + 1 .. t``, the output
of every layer at earlier positions does not change when a token is appended. So the new
position's output through ``L`` layers needs, per layer ``l``, only the layer's keys and values
at the last ``W - 1`` positions and the new position's input: one query per layer. The cache
holds the keys and values already projected (``k = x W_k + b_k``, ``v = x W_v + b_v``), so a
step projects one position per layer, ``O(L (W H + H^2))``, instead of re-projecting the
window's ``W`` inputs (``O(L W H^2)``) or re-running all ``L (W - 1) + 1`` tokens of the
receptive field (``O(L^2 W^2 H)``). The result is the same computation as the teacher-forced
pass (tests/nn/test_cached_encoder.py checks it to float64 precision).

Shapes: ``B`` sequences, ``T`` positions, ``H`` width; a cache is a list with one
``[B, <= W - 1, 2H]`` tensor per layer, the keys in ``[..., :H]`` and the values in
``[..., H:]`` (``W <= 0``: unlimited attention, the whole history).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

LayerCaches = list[Tensor]


def _check_layer(layer: nn.Module) -> nn.TransformerEncoderLayer:
    """The layers cached decoding reproduces: post-norm, batch-first, plain packed attention."""
    if not isinstance(layer, nn.TransformerEncoderLayer) or layer.norm_first:
        raise TypeError(
            "cached decoding supports post-norm nn.TransformerEncoderLayer (norm_first=False); "
            f"got {type(layer).__name__}"
        )
    attn = layer.self_attn
    if not (attn.batch_first and attn._qkv_same_embed_dim) or attn.bias_k is not None:
        raise TypeError(
            "cached decoding supports batch-first self-attention with packed projections "
            "and no bias_k/bias_v"
        )
    if attn.add_zero_attn:
        raise TypeError("cached decoding does not support add_zero_attn=True")
    return layer


def _keep(cache: Tensor, window: int) -> Tensor:
    """The last ``W - 1`` positions (all of them for unlimited attention)."""
    return cache if window <= 0 else cache[:, cache.shape[1] - (window - 1) :]


def _projection(attn: nn.MultiheadAttention, rows: slice, x: Tensor) -> Tensor:
    """``x [B, T, H] @ W[rows].T + b[rows]``: rows ``:H`` of the packed weight are the query's,
    ``H:2H`` the key's, ``2H:`` the value's."""
    bias = None if attn.in_proj_bias is None else attn.in_proj_bias[rows]
    return F.linear(x, attn.in_proj_weight[rows], bias)


def key_values(attn: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """A layer's keys and values of its inputs ``x [B, T, H]``: ``[B, T, 2H]``, keys first."""
    return _projection(attn, slice(attn.embed_dim, None), x)


def attend(attn: nn.MultiheadAttention, x: Tensor, keys_values: Tensor) -> Tensor:
    """Self-attention output ``[B, 1, H]`` of one query position ``x [B, 1, H]`` over
    ``keys_values [B, T, 2H]`` (every position visible), as ``nn.MultiheadAttention`` computes
    it: ``out_proj(concat_heads(softmax(q k^T / sqrt(H / heads)) v))``."""
    heads, width = attn.num_heads, attn.embed_dim
    query = _projection(attn, slice(None, width), x)
    keys, values = keys_values.split(width, dim=-1)
    split = "b t (n d) -> b n t d"
    out = F.scaled_dot_product_attention(
        rearrange(query, split, n=heads),
        rearrange(keys, split, n=heads),
        rearrange(values, split, n=heads),
        dropout_p=attn.dropout if attn.training else 0.0,
    )
    return attn.out_proj(rearrange(out, "b n t d -> b t (n d)"))


def encode_with_caches(
    layers: nn.TransformerEncoder, x: Tensor, mask: Tensor, window: int
) -> tuple[Tensor, LayerCaches]:
    """Teacher-forced pass ``x [B, T, H] -> [B, T, H]`` (the encoder's own forward, layer by
    layer, with the causal ``mask [T, T]``) and the caches of every layer's last keys and
    values."""
    if layers.norm is not None:
        raise TypeError("cached decoding supports encoders without a final norm")
    caches = []
    for layer in layers.layers:
        layer = _check_layer(layer)
        caches.append(key_values(layer.self_attn, _keep(x, window)))
        x = layer(x, src_mask=mask)
    return x, caches


def step_with_caches(
    layers: nn.TransformerEncoder, x: Tensor, caches: LayerCaches, window: int
) -> tuple[Tensor, LayerCaches]:
    """One new position ``x [B, 1, H]`` -> its output ``[B, 1, H]`` and the updated caches."""
    new_caches = []
    for layer, cache in zip(layers.layers, caches, strict=True):
        layer = _check_layer(layer)
        keys_values = torch.cat([cache, key_values(layer.self_attn, x)], dim=1)
        new_caches.append(_keep(keys_values, window))
        attended = attend(layer.self_attn, x, keys_values)
        x = layer.norm1(x + layer.dropout1(attended))
        feed = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
        x = layer.norm2(x + layer.dropout2(feed))
    return x, new_caches
