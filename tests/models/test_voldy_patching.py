"""Patching (``probforecast.nn.patching``) and the scale-smoothness diagnostic of VolDy-VAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.models.voldy.diagnostics import lag1_autocorrelation, scale_smoothness
from probforecast.nn.patching import num_patches, patchify, unpatchify


def test_patch_layout_is_time_major_over_all_channels():
    x = torch.arange(2 * 48 * 3, dtype=torch.float64).reshape(2, 48, 3)
    p = patchify(x, 24)
    assert p.shape == (2, 2, 72)
    # patch k, element p*C + c = step k*24 + p, channel c
    torch.testing.assert_close(p[1, 1, 5 * 3 + 2], x[1, 24 + 5, 2])
    torch.testing.assert_close(unpatchify(p, 24, 48), x)


@pytest.mark.parametrize("length", [36, 96, 100])
def test_edge_padding_round_trip_is_aligned(length):
    x = torch.randn(2, length, 3)
    p = patchify(x, 24, "edge")
    assert p.shape[1] == num_patches(length, 24)
    torch.testing.assert_close(unpatchify(p, 24, length, "edge"), x)
    pad = p.shape[1] * 24 - length
    flat = unpatchify(p, 24, p.shape[1] * 24, "edge")
    torch.testing.assert_close(flat[:, :pad], x[:, :1].expand(-1, pad, -1))


def test_wrap_padding_reproduces_the_official_shifted_reconstruction():
    """L=36, P=24: the code prepends x[24:36] and keeps the first 36 steps (spec pitfall P6)."""
    x = torch.arange(36.0).reshape(1, 36, 1)
    p = patchify(x, 24, "wrap")
    expected = torch.cat([x[:, 24:], x[:, :24]], dim=1)
    torch.testing.assert_close(unpatchify(p, 24, 36, "wrap"), expected)


def test_future_outputs_are_truncated_to_the_horizon():
    p = torch.randn(2, 3, 24 * 2)
    out = unpatchify(p, 24, 60, past=False)
    torch.testing.assert_close(out, unpatchify(p, 24, 72)[:, :60])


def test_patching_bad_input():
    with pytest.raises(ValueError, match=r"expects \[B, T, C\]"):
        patchify(torch.randn(5, 4), 24)
    with pytest.raises(ValueError, match="padding must be one of"):
        patchify(torch.randn(1, 30, 2), 24, "zeros")
    with pytest.raises(ValueError, match="cannot cover"):
        unpatchify(torch.randn(1, 2, 48), 24, 60)


def test_lag1_autocorrelation_matches_numpy_corrcoef():
    sigma = torch.rand(3, 20, 2, dtype=torch.float64)
    rho = lag1_autocorrelation(sigma)
    for b in range(3):
        for c in range(2):
            s = sigma[b, :, c].numpy()
            assert rho[b, c].item() == pytest.approx(np.corrcoef(s[1:], s[:-1])[0, 1], rel=1e-10)


def test_scale_smoothness_extremes_and_constant_paths():
    t = torch.linspace(0, 1, 200, dtype=torch.float64)
    smooth = (1.5 + torch.sin(2 * torch.pi * t)).reshape(1, -1, 1)
    assert scale_smoothness(smooth).item() > 0.99
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(50, 200, 2, generator=g, dtype=torch.float64)
    assert abs(scale_smoothness(noise).item()) < 0.02
    constant = torch.ones(2, 30, 1, dtype=torch.float64)
    assert torch.isnan(lag1_autocorrelation(constant)).all()
    mixed = torch.cat([constant, smooth[:, :30].expand(2, -1, -1)], dim=-1)
    torch.testing.assert_close(scale_smoothness(mixed), lag1_autocorrelation(mixed)[:, 1].mean())
