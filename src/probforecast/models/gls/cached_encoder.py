"""Incremental decoding of a causal, sliding-window ``nn.TransformerEncoder`` with per-layer caches.

With a causal mask in which position ``t`` attends to positions ``t - W + 1 .. t``, the output
of every layer at earlier positions does not change when a token is appended. So the new
position's output through ``L`` layers needs, per layer ``l``, only the layer's inputs at the
last ``W - 1`` positions (its keys and values) and the new position's input: one query per
layer, ``O(L W H)`` per step instead of re-running all ``L (W - 1) + 1`` tokens of the
receptive field through full attention (``O(L^2 W^2 H)``). The result is the same computation
as the teacher-forced pass (tests/nn/test_cached_encoder.py checks it to float precision).

Shapes: ``B`` sequences, ``T`` positions, ``H`` width; a cache is a list with one
``[B, <= W - 1, H]`` tensor per layer (``W <= 0``: unlimited attention, the whole history).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LayerCaches = list[Tensor]


def _check_post_norm(layer: nn.Module) -> nn.TransformerEncoderLayer:
    if not isinstance(layer, nn.TransformerEncoderLayer) or layer.norm_first:
        raise TypeError(
            "cached decoding supports post-norm nn.TransformerEncoderLayer (norm_first=False); "
            f"got {type(layer).__name__}"
        )
    return layer


def _keep(cache: Tensor, window: int) -> Tensor:
    """The last ``W - 1`` positions (all of them for unlimited attention)."""
    return cache if window <= 0 else cache[:, cache.shape[1] - (window - 1) :]


def encode_with_caches(
    layers: nn.TransformerEncoder, x: Tensor, mask: Tensor, window: int
) -> tuple[Tensor, LayerCaches]:
    """Teacher-forced pass ``x [B, T, H] -> [B, T, H]`` (the encoder's own forward, layer by
    layer, with the causal ``mask [T, T]``) and the caches of every layer's last inputs."""
    if layers.norm is not None:
        raise TypeError("cached decoding supports encoders without a final norm")
    caches = []
    for layer in layers.layers:
        caches.append(_keep(x, window))
        x = _check_post_norm(layer)(x, src_mask=mask)
    return x, caches


def step_with_caches(
    layers: nn.TransformerEncoder, x: Tensor, caches: LayerCaches, window: int
) -> tuple[Tensor, LayerCaches]:
    """One new position ``x [B, 1, H]`` -> its output ``[B, 1, H]`` and the updated caches."""
    new_caches = []
    for layer, cache in zip(layers.layers, caches, strict=True):
        layer = _check_post_norm(layer)
        keys = torch.cat([cache, x], dim=1)
        new_caches.append(_keep(keys, window))
        attended = layer.self_attn(x, keys, keys, need_weights=False)[0]
        x = layer.norm1(x + layer.dropout1(attended))
        feed = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
        x = layer.norm2(x + layer.dropout2(feed))
    return x, new_caches
