"""The GLS computations follow their inputs' device and dtype, not torch's defaults (issue 19:
surviving mutants that build a ``torch.eye`` / ``torch.randn`` without ``device=`` or ``dtype=``).

Under ``with torch.device("meta")`` every factory call without an explicit ``device`` makes a
meta tensor, as ``torch.set_default_device("cuda")`` would make a CUDA one: a helper that drops
``device=`` then fails or returns a non-CPU result for CPU inputs. Likewise a float64 default
dtype must not turn a float32 computation into float64 (or break it with a dtype mismatch).
"""

from __future__ import annotations

import pytest
import torch

from probforecast.distributions import (
    GLSMultivariateNormal,
    gls_conditional_next,
    gls_covariance_matrix,
    gls_log_prob,
    gls_options,
    kernel_mixture_correlation,
    sample_conditional,
)
from probforecast.distributions._covariance_path import masked_covariance
from probforecast.distributions.ar_correlation import ar_correlation

from .helpers import random_params

F64 = torch.float64


def _corr(d, dtype=F64):
    w = torch.tensor([0.5, 0.3, 0.2], dtype=dtype)
    return kernel_mixture_correlation(w, torch.tensor([1.0, 2.5], dtype=dtype), d)


def _ar(d, dtype=F64):
    return ar_correlation(torch.tensor([[0.5, -0.2], [0.3, 0.1]], dtype=dtype), d)


def _conditional_args(d, corr, dtype=F64):
    _, factor, diag, eta = random_params((2,), d, 3, 2, seed=21, dtype=dtype)
    return (eta[:, :-1], factor[:, :-1], diag[:, :-1], factor[:, -1], diag[:, -1], corr)


def _assert_cpu_and_equal(got, expected):
    for g, e in zip(got, expected, strict=True):
        assert g.device.type == "cpu"
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_dense_covariance_helpers_stay_on_the_input_device():
    """``gls_covariance_matrix`` and ``masked_covariance`` (identity blocks built on the inputs'
    device) give the same CPU tensors under a meta default device."""
    _, factor, diag, _ = random_params((2,), 3, 2, 2, seed=20)
    mask = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(0)) < 0.6
    corr = _corr(3)
    expected = (
        gls_covariance_matrix(factor, diag, corr),
        masked_covariance(factor, diag, corr, mask),
    )
    with torch.device("meta"):
        got = (
            gls_covariance_matrix(factor, diag, corr),
            masked_covariance(factor, diag, corr, mask),
        )
    _assert_cpu_and_equal(got, expected)


@pytest.mark.parametrize("method", ["capacitance", "covariance", "banded"])
def test_log_prob_stays_on_the_input_device(method):
    """``gls_log_prob`` (e.g. the banded capacitance's ``I_R``) runs on the inputs' device under a
    meta default device. (The autograd engine runs backward outside the device context, so the
    backward's own helpers are checked directly in ``test_capacitance.py``.)"""
    loc, factor, diag, value = random_params((2,), 3, 2, 3, seed=22)
    corr = _ar(3) if method == "banded" else _corr(3)
    with gls_options(method=method):
        expected = gls_log_prob(value, loc, factor, diag, corr)
        with torch.device("meta"):
            got = gls_log_prob(value, loc, factor, diag, corr)
    _assert_cpu_and_equal([got], [expected])


@pytest.mark.parametrize("banded", [False, True])
def test_conditional_and_its_samples_stay_on_the_input_device(banded):
    """``gls_conditional_next`` (dense and banded ``I_R``) and ``sample_conditional`` (its noise,
    drawn with a CPU generator) give the same CPU tensors under a meta default device."""
    args = _conditional_args(4, _ar(4) if banded else _corr(4))

    def conditional_and_sample():
        cond = gls_conditional_next(*args)
        draw = sample_conditional(cond, (5,), generator=torch.Generator().manual_seed(3))
        return cond.loc, cond.cov_factor, draw

    expected = conditional_and_sample()
    with torch.device("meta"):
        got = conditional_and_sample()
    _assert_cpu_and_equal(got, expected)


def test_samples_without_a_generator_stay_on_the_input_device():
    """``GLSMultivariateNormal.rsample`` and ``sample_conditional`` without a generator draw
    their noise on the parameters' device (CPU) under a meta default device."""
    loc, factor, diag, _ = random_params((2,), 3, 2, 2, seed=23)
    dist = GLSMultivariateNormal(loc, factor, diag, _corr(3))
    cond = gls_conditional_next(*_conditional_args(3, _corr(3)))
    with torch.device("meta"):
        draws = (dist.rsample((4,)), sample_conditional(cond, (4,)))
    assert [x.shape for x in draws] == [(4, 2, 3, 2), (4, 2, 3)]
    assert all(x.device.type == "cpu" and torch.isfinite(x).all() for x in draws)


def _under_float64_default(fn):
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        return fn()
    finally:
        torch.set_default_dtype(old)


def test_banded_paths_keep_float32_under_a_float64_default_dtype():
    """float32 inputs with an ``ARCorrelation``: the banded log-density and the banded conditional
    stay float32 under a float64 default dtype (their ``I_R`` is built in the inputs' dtype) and
    agree with the float64 computation."""
    loc, factor, diag, value = random_params((2,), 4, 3, 2, seed=24)
    eta_args = _conditional_args(4, _ar(4))
    lp64 = gls_log_prob(value, loc, factor, diag, _ar(4))
    cond64 = gls_conditional_next(*eta_args)

    def float32_run():
        f32 = [t.float() for t in (value, loc, factor, diag)]
        lp = gls_log_prob(*f32, _ar(4, torch.float32))
        cond = gls_conditional_next(*(t.float() for t in eta_args[:-1]), _ar(4, torch.float32))
        return lp, cond

    lp, cond = _under_float64_default(float32_run)
    assert lp.dtype == cond.loc.dtype == cond.cov_factor.dtype == torch.float32
    torch.testing.assert_close(lp.double(), lp64, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(cond.loc.double(), cond64.loc, rtol=1e-4, atol=1e-5)


def test_conditional_samples_keep_float32_under_a_float64_default_dtype():
    """``sample_conditional`` of a float32 conditional draws float32 noise under a float64 default
    dtype: the draw is float32 and equals the float32 draw of the same generator seed made under
    the float32 default."""
    f32 = torch.float32
    cond = gls_conditional_next(*_conditional_args(3, _corr(3, f32), dtype=f32))

    def draw():
        return sample_conditional(cond, (3,), generator=torch.Generator().manual_seed(4))

    expected = draw()
    got = _under_float64_default(draw)
    assert expected.dtype == got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
