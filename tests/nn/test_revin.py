"""RevIN against float64 numpy statistics, its inverses, masks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.nn.revin import RevIN


def _revin(c: int, affine: bool = True, seed: int = 0) -> RevIN:
    torch.manual_seed(seed)
    m = RevIN(c, affine=affine).double()
    if affine:
        with torch.no_grad():
            m.weight.uniform_(0.5, 2.0)
            m.bias.normal_()
    return m


def test_normalize_matches_numpy_statistics_and_affine_map():
    x = torch.randn(4, 30, 3, dtype=torch.float64) * 5 + 2
    m = _revin(3)
    out = m.normalize(x)
    xn = x.numpy()
    mean = xn.mean(axis=1, keepdims=True)
    std = np.sqrt(xn.var(axis=1, keepdims=True) + 1e-5)  # biased variance
    expected = (xn - mean) / std * m.weight.detach().numpy() + m.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.stdev.numpy(), std, rtol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
def test_round_trip_and_other_lengths(affine):
    x = torch.randn(5, 24, 4) * 3 - 1
    m = RevIN(4, affine=affine)
    if affine:
        with torch.no_grad():
            m.weight.uniform_(0.5, 2.0)
            m.bias.normal_()
    torch.testing.assert_close(m.denormalize(m.normalize(x)), x, atol=1e-5, rtol=1e-5)
    # a horizon of another length is mapped with the look-back's statistics
    v = torch.randn(5, 7, 4)
    gamma = m.weight.detach() if affine else torch.ones(4)
    beta = m.bias.detach() if affine else torch.zeros(4)
    expected = (v - beta) / (gamma + 1e-10) * m.stdev + m.mean
    torch.testing.assert_close(m.denormalize(v), expected)


def test_denormalize_scale_is_the_derivative_of_denormalize():
    """denorm(a + sigma) - denorm(a) = sigma * s / gamma for gamma > 0 (linearity of the map)."""
    x = torch.randn(3, 20, 2, dtype=torch.float64) * 4
    m = _revin(2)
    m.normalize(x)
    a = torch.randn(3, 9, 2, dtype=torch.float64)
    sigma = torch.rand(3, 9, 2, dtype=torch.float64)
    torch.testing.assert_close(
        m.denormalize(a + sigma) - m.denormalize(a), m.denormalize_scale(sigma).detach()
    )


def test_masked_statistics_use_observed_steps_only():
    x = torch.randn(2, 16, 3, dtype=torch.float64)
    mask = torch.rand(2, 16, 3) > 0.3
    mask[:, 0] = True
    m = RevIN(3, affine=False)
    mean, std = m.statistics(x, mask)
    for b in range(2):
        for c in range(3):
            obs = x[b, mask[b, :, c], c].numpy()
            assert mean[b, 0, c].item() == pytest.approx(obs.mean(), rel=1e-12)
            assert std[b, 0, c].item() == pytest.approx(np.sqrt(obs.var() + 1e-5), rel=1e-12)


def test_affine_parameters_receive_gradients():
    m = RevIN(3)
    x = torch.randn(2, 10, 3)
    m.denormalize(m.normalize(x) ** 2).sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    assert m.weight.grad.abs().sum() > 0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        RevIN(0)
    m = RevIN(3)
    with pytest.raises(ValueError, match=r"expects \[B, T, C=3\]"):
        m.normalize(torch.randn(2, 10, 4))
    with pytest.raises(RuntimeError, match="before normalize"):
        m.denormalize(torch.randn(2, 10, 3))
    m.normalize(torch.randn(2, 10, 3))
    with pytest.raises(ValueError, match="statistics have 2"):
        m.denormalize(torch.randn(5, 10, 3))
