"""Cached incremental decoding equals the teacher-forced sliding-window encoder, position by
position, in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from probforecast.models.gls.cached_encoder import encode_with_caches, step_with_caches
from probforecast.models.gls.transformer import sliding_causal_mask


def encoder(layers: int = 3, width: int = 8, norm_first: bool = False) -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        width, 2, dim_feedforward=16, dropout=0.1, batch_first=True, norm_first=norm_first
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).double().eval()


@pytest.mark.parametrize("window", [1, 3, 5, 0])
def test_each_step_equals_the_teacher_forced_position(window):
    layers = encoder()
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


def test_pre_norm_layers_are_refused():
    layers = encoder(norm_first=True)
    with pytest.raises(TypeError, match="post-norm"):
        encode_with_caches(
            layers, torch.randn(1, 3, 8, dtype=torch.float64), sliding_causal_mask(3, 2), 2
        )
