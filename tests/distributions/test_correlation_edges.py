"""Edges of the correlation constructions and of their argument checks (issue 19, surviving
mutants): boundary values, per-element stationarity rescaling, float64 accuracy of the roots,
dtypes under a float64 default dtype, and log-determinant checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.distributions import (
    ar_toeplitz_correlation,
    default_lengthscales,
    log_det_corr,
)
from probforecast.distributions._cholesky import GLSCholeskyError
from probforecast.distributions.correlation import _stationary_phi

F64 = torch.float64


def _max_root(phi):
    """Largest modulus of the roots of ``z^p - phi_1 z^(p-1) - ... - phi_p`` (numpy, float64)."""
    return max(abs(np.roots(np.concatenate([[1.0], -np.asarray(phi, dtype=np.float64)]))))


def test_default_lengthscales_boundaries():
    """``num_components = 1`` (identity only) is valid and gives no lengthscale; ``start = 0``
    and ``num_components = 0`` raise the ValueError with its message."""
    assert default_lengthscales(1) == []
    assert default_lengthscales(2, 0.5) == [0.5]
    for bad in ({"num_components": 0}, {"num_components": 3, "start": 0.0}):
        with pytest.raises(ValueError, match="need num_components >= 1"):
            default_lengthscales(**bad)


def test_ar_toeplitz_size_one_and_argument_errors():
    """``size = 1`` gives ``[[1 + jitter]]``; ``size = 0``, an unknown stationarity mode and
    ``max_root`` outside the open interval (0, 1) (both ends and beyond) raise with messages."""
    phi = torch.tensor([0.5], dtype=F64)
    torch.testing.assert_close(
        ar_toeplitz_correlation(phi, 1, jitter=1e-3), torch.tensor([[1.001]], dtype=F64)
    )
    with pytest.raises(ValueError, match="size"):
        ar_toeplitz_correlation(phi, 0)
    with pytest.raises(ValueError, match="stationarity must be"):
        ar_toeplitz_correlation(phi, 3, stationarity="clip")
    for root in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="max_root must be in"):
            ar_toeplitz_correlation(phi, 3, max_root=root)


def test_unit_root_raises_in_raise_mode():
    """A unit root (``phi = 1``, modulus exactly 1) is not stationary: ``"raise"`` raises."""
    with pytest.raises(ValueError, match="not stationary"):
        ar_toeplitz_correlation(torch.tensor([1.0], dtype=F64), 4, stationarity="raise")


def test_shrinking_is_per_batch_element_and_exact_in_float64():
    """Each batch element is rescaled by its own root modulus: a stationary element is left
    unchanged while another is shrunk, and the shrunk one's largest root is ``max_root`` to
    float64 accuracy (1e-12; a float32 root computation would be off by ~1e-7)."""
    phi = torch.tensor([[0.3, 0.2], [1.5, -0.3]], dtype=F64)
    out = _stationary_phi(phi, 0.9, "shrink")
    torch.testing.assert_close(out[0], phi[0], rtol=0, atol=0)
    assert abs(_max_root(out[1].numpy()) - 0.9) < 1e-12


def test_ar_toeplitz_keeps_float32_under_a_float64_default_dtype():
    """float32 ``phi`` gives a float32 ``C`` whatever torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        corr = ar_toeplitz_correlation(torch.tensor([0.5], dtype=torch.float32), 3)
    finally:
        torch.set_default_dtype(old)
    assert corr.dtype == torch.float32
    torch.testing.assert_close(corr[0, 2], torch.tensor(0.25))


@pytest.mark.parametrize("bad", [torch.ones(3), torch.ones(3, 4), torch.ones(2, 3, 4)])
def test_log_det_corr_rejects_non_square_shapes(bad):
    """A 1-D or non-square ``corr`` raises the ValueError with its shape in the message."""
    with pytest.raises(ValueError, match=r"corr must have shape \[\.\.\., D, D\]; got \("):
        log_det_corr(bad)


def test_log_det_corr_value_and_error_name():
    """``log|C|`` equals the dense slogdet; a matrix no jitter fixes raises an error that names
    ``correlation matrix C``."""
    corr = ar_toeplitz_correlation(torch.tensor([0.6], dtype=F64), 4)
    torch.testing.assert_close(log_det_corr(corr), torch.linalg.slogdet(corr)[1])
    bad = corr.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(GLSCholeskyError, match="^correlation matrix C: "):
        log_det_corr(bad)
