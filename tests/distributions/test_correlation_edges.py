"""Edges of the correlation constructions and of their argument checks (issue 19, surviving
mutants): boundary values, per-element stationarity rescaling, float64 accuracy of the roots,
dtypes under a float64 default dtype, and log-determinant checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from probforecast.distributions import (
    ar_toeplitz_correlation,
    default_lengthscales,
    kernel_mixture_correlation,
    log_det_corr,
)
from probforecast.distributions._cholesky import GLSCholeskyError
from probforecast.distributions.correlation import _flush_tiny, _stationary_phi

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


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_flush_tiny_cutoff_is_eps_squared_exclusive(dtype):
    """Guards the flushing cutoff: ``|C_ij| < eps^2`` becomes 0, ``eps^2`` itself and anything
    larger (1.5 eps^2, 1e3 eps^2, eps) are kept, with either sign."""
    tiny = torch.finfo(dtype).eps ** 2  # a power of two, exact in the dtype
    kept = torch.tensor([tiny, -tiny, 1.5 * tiny, -1e3 * tiny, torch.finfo(dtype).eps], dtype=dtype)
    flushed = torch.tensor([0.5 * tiny, -0.99 * tiny, 1e-3 * tiny], dtype=dtype)
    torch.testing.assert_close(_flush_tiny(kept), kept, rtol=0, atol=0)
    assert _flush_tiny(flushed).eq(0).all()


def test_ar_toeplitz_flushes_exactly_the_autocorrelations_below_eps_squared():
    """Guards the flushing in ``C``: for float32 ``phi = 0.1`` (``rho_k = 0.1^k``) the lags up to
    13 (``1e-13 > eps^2 = 1.4e-14``) keep their value, the later ones are exactly 0."""
    phi = torch.tensor([0.1], dtype=torch.float32)
    row = ar_toeplitz_correlation(phi, 20, jitter=0.0)[0]
    expected = float(phi) ** torch.arange(20, dtype=F64)
    torch.testing.assert_close(row[:14].double(), expected[:14], rtol=1e-5, atol=0)
    assert row[14:].eq(0).all()


def test_kernel_mixture_argument_errors_have_their_messages():
    """Guards the checks of ``kernel_mixture_correlation``: a 0-d ``weights`` or ``lengthscales``
    (even when the other is 1-d) and ``size < 1`` raise ValueError with their exact texts."""
    expects = (
        "kernel_mixture_correlation expects weights [..., M] (identity weight last) and "
        "lengthscales [..., M-1]; got weights {}, lengthscales {}"
    )
    one, two = torch.tensor([1.0], dtype=F64), torch.tensor([0.5, 0.5], dtype=F64)
    cases = [
        (torch.tensor(1.0, dtype=F64), one, "()", "(1,)"),
        (two, torch.tensor(1.0), "(2,)", "()"),
    ]
    for weights, scales, w_shape, l_shape in cases:
        message = re.escape(expects.format(w_shape, l_shape))
        with pytest.raises(ValueError, match=f"^{message}$"):
            kernel_mixture_correlation(weights, scales, 3)
    with pytest.raises(ValueError, match=r"^size \(D\) must be >= 1; got 0$"):
        kernel_mixture_correlation(two, one, 0)


def test_kernel_mixture_lengthscales_take_the_dtype_of_the_weights():
    """Guards the conversion of ``lengthscales`` to the weights' dtype: float32 weights with
    float64 lengthscales give float32 ``C``; float64 weights with Python-float lengthscales
    (1.1 is not a float32 number) match the float64 closed form to 1e-15."""
    weights = torch.tensor([0.7, 0.3], dtype=torch.float32)
    corr = kernel_mixture_correlation(weights, torch.tensor([1.1], dtype=F64), 3)
    assert corr.dtype == torch.float32
    corr = kernel_mixture_correlation(torch.tensor([0.7, 0.3], dtype=F64), [1.1], 4, jitter=0.0)
    assert corr.dtype == F64
    lags = torch.arange(4, dtype=F64)
    expected = 0.7 * torch.exp(-(lags**2) / 1.1**2)
    expected[0] += 0.3
    torch.testing.assert_close(corr[0], expected, rtol=1e-15, atol=0)


def test_kernel_mixture_keeps_float32_under_a_float64_default_dtype():
    """Guards the dtype of the identity term: float32 weights give a float32 ``C`` whatever
    torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        corr = kernel_mixture_correlation(torch.tensor([0.5, 0.5]).float(), [1.0], 3)
    finally:
        torch.set_default_dtype(old)
    assert corr.dtype == torch.float32
    torch.testing.assert_close(corr[0, 0], torch.tensor(1.0 + 1e-6))


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_kernel_mixture_in_half_precision_is_toeplitz_beyond_256_positions(half):
    """Guards the integer positions: bf16 cannot hold 257 (``arange`` in bf16 gives 256, 256,
    258, ...), yet a half-precision ``C`` of 300 positions is Toeplitz, in the weights' dtype,
    and equal to the float64 ``C`` rounded to that dtype."""
    weights = torch.tensor([0.9, 0.1], dtype=half)
    corr = kernel_mixture_correlation(weights, torch.tensor([1.0], dtype=half), 300, jitter=0.0)
    assert corr.dtype == half
    for offset in (0, 1, 2, 3):
        diag = corr.diagonal(offset=offset)
        assert diag.eq(diag[0]).all(), offset
    reference = kernel_mixture_correlation(weights.double(), [1.0], 300, jitter=0.0)
    torch.testing.assert_close(corr.double(), reference, rtol=1e-2, atol=1e-3)
