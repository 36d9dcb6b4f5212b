"""RevIN against float64 numpy statistics, its inverses, masks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.models.voldy.revin import RevIN


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


def test_one_channel_is_valid_and_eps_must_be_positive():
    x = torch.randn(2, 8, 1, dtype=torch.float64)
    m = RevIN(1, affine=False).double()
    torch.testing.assert_close(m.denormalize(m.normalize(x)), x)
    with pytest.raises(ValueError, match=r"^RevIN: eps must be > 0; got 0$"):
        RevIN(3, eps=0)


def test_errors_name_the_method_and_the_shapes():
    m = RevIN(3)
    with pytest.raises(ValueError, match=r"^RevIN\.statistics expects \[B, T, C=3\]; got shape"):
        m.statistics(torch.randn(2, 10, 4))
    with pytest.raises(
        ValueError, match=r"^RevIN: mask must have the shape of x \(2, 10, 3\); got \(2, 9, 3\)$"
    ):
        m.statistics(torch.randn(2, 10, 3), torch.ones(2, 9, 3, dtype=torch.bool))
    with pytest.raises(RuntimeError, match=r"^RevIN\.denormalize called before normalize$"):
        m.denormalize_scale(torch.rand(2, 10, 3))
    m.normalize(torch.randn(2, 10, 3))
    with pytest.raises(ValueError, match=r"^RevIN\.denormalize expects \[B, T, C=3\]"):
        m.denormalize(torch.randn(2, 10))
    with pytest.raises(ValueError, match=r"^RevIN\.denormalize_scale expects \[B, T, C=3\]"):
        m.denormalize_scale(torch.rand(2, 10, 2))
    with pytest.raises(
        ValueError, match=r"^RevIN\.denormalize got 5 windows; the stored .* have 2"
    ):
        m.denormalize(torch.randn(5, 4, 3))


def test_normalize_stores_the_masked_statistics():
    x = torch.randn(2, 12, 3, dtype=torch.float64) * 3 + 1
    mask = torch.rand(2, 12, 3) > 0.4
    mask[:, 0] = True
    x_filled = torch.where(mask, x, torch.full_like(x, 1e3))  # unobserved values must not count
    m = RevIN(3, affine=False)
    out = m.normalize(x_filled, mask)
    mean, std = m.statistics(x, mask)
    torch.testing.assert_close(m.mean, mean)
    torch.testing.assert_close(m.stdev, std)
    torch.testing.assert_close(out[mask], ((x - mean) / std)[mask])


def test_a_single_observed_step_is_its_own_mean():
    x = torch.randn(1, 6, 2, dtype=torch.float64)
    mask = torch.zeros(1, 6, 2, dtype=torch.bool)
    mask[0, 3, 0] = True  # channel 0: one observed step; channel 1: none
    mean, std = RevIN(2, affine=False).statistics(x, mask)
    assert mean[0, 0, 0].item() == x[0, 3, 0].item() and mean[0, 0, 1].item() == 0.0
    torch.testing.assert_close(std, torch.full_like(std, 1e-5**0.5))


def test_inverse_affine_map_uses_gamma_plus_eps_squared():
    """With a large eps the ``gamma + eps^2`` divisor is visible (eps 0.1: 1.01 vs 1.001)."""
    m = RevIN(2, eps=0.1).double()
    with torch.no_grad():
        m.weight.copy_(torch.tensor([2.0, -0.5]))
        m.bias.copy_(torch.tensor([0.3, -1.0]))
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    m.normalize(x)
    v = torch.randn(3, 4, 2, dtype=torch.float64)
    divisor = torch.tensor([2.01, -0.49], dtype=torch.float64)
    expected = (v - m.bias.detach()) / divisor * m.stdev + m.mean
    torch.testing.assert_close(m.denormalize(v).detach(), expected, rtol=1e-12, atol=1e-12)
    sigma = torch.rand(3, 4, 2, dtype=torch.float64)
    torch.testing.assert_close(
        m.denormalize_scale(sigma).detach(), sigma / divisor.abs() * m.stdev, rtol=1e-12, atol=0
    )
