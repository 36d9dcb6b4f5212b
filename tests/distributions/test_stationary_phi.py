"""AR(p) stationarity by root rescaling, against numpy's polynomial roots (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.distributions.correlation import _stationary_phi

F64 = torch.float64


def root_radius(phi: np.ndarray) -> float:
    """Largest |root| of z^p - phi_1 z^(p-1) - ... - phi_p."""
    return float(np.abs(np.roots(np.concatenate([[1.0], -phi]))).max())


@pytest.mark.parametrize(
    "phi", [[1.5], [-1.2], [1.5, -0.2], [0.4, 0.5, 0.3], [2.0, -1.5, 0.6]], ids=str
)
def test_shrink_puts_the_largest_root_exactly_on_max_root(phi):
    raw = np.array(phi)
    assert root_radius(raw) > 0.9
    out = _stationary_phi(torch.tensor(raw, dtype=F64), 0.9, "shrink")
    assert out.dtype == F64
    alpha = 0.9 / root_radius(raw)
    expected = raw * alpha ** np.arange(1, len(raw) + 1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert root_radius(out.numpy()) == pytest.approx(0.9, rel=1e-10)


def test_stationary_rows_are_unchanged_and_rows_are_independent():
    phi = torch.tensor([[0.5, 0.2], [1.5, -0.2], [-0.3, 0.1]], dtype=F64)
    out = _stationary_phi(phi, 0.95, "shrink")
    torch.testing.assert_close(out[0], phi[0], rtol=0, atol=0)
    torch.testing.assert_close(out[2], phi[2], rtol=0, atol=0)
    assert root_radius(out[1].numpy()) == pytest.approx(0.95, rel=1e-10)


def test_the_scale_is_a_constant_in_the_backward_pass():
    phi = torch.tensor([1.5, -0.2], dtype=F64, requires_grad=True)
    out = _stationary_phi(phi, 0.9, "shrink")
    (grad,) = torch.autograd.grad(out.sum(), phi)
    alpha = 0.9 / root_radius(phi.detach().numpy())
    torch.testing.assert_close(grad, torch.tensor([alpha, alpha**2], dtype=F64))


def test_raise_names_the_root_and_accepts_stationary_input():
    with pytest.raises(
        ValueError,
        match=r"^AR\(2\) coefficients are not stationary \(largest "
        r"characteristic root modulus 1\.3521 >= 1\)",
    ):
        _stationary_phi(torch.tensor([1.5, -0.2], dtype=F64), 0.9, "raise")
    ok = torch.tensor([0.5, 0.2], dtype=F64)
    torch.testing.assert_close(_stationary_phi(ok, 0.9, "raise"), ok, rtol=0, atol=0)
