"""How ``gls_log_prob`` and ``gls_conditional_next`` use an ``ARCorrelation`` (issue 19, surviving
mutants): which path runs (banded vs dense), the batch shapes the banded path accepts, and what a
failing banded capacitance does (the likelihood raises naming it, the conditional falls back)."""

from __future__ import annotations

import pytest
import torch

import probforecast.distributions.gls as gls_module
import probforecast.distributions.gls_conditional as conditional_module
from probforecast.distributions import gls_conditional_next, gls_log_prob, gls_options
from probforecast.distributions._cholesky import (
    GLSCholeskyError,
    jitter_counts,
    reset_jitter_counts,
)
from probforecast.distributions.ar_correlation import ar_correlation

from .helpers import conditional_split, dense_log_prob, dense_sigma, random_params

F64 = torch.float64


def _phi(batch, order, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, order, generator=gen, dtype=F64) * 0.5


def _spy(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def _schur(eta_obs, factor_obs, diag_obs, factor_next, diag_next, corr):
    """Dense float64 conditional of the last step, looping over the broadcast batch."""
    factor = torch.cat([factor_obs, factor_next.unsqueeze(-3)], dim=-3)
    diag = torch.cat([diag_obs, diag_next.unsqueeze(-2)], dim=-2)
    sigma = dense_sigma(factor, diag, corr)
    b, n = diag_next.shape[-1], eta_obs.shape[-2] * eta_obs.shape[-1]
    batch = sigma.shape[:-2]
    flat_sigma = sigma.reshape(-1, n + b, n + b)
    flat_eta = eta_obs.expand(*batch, *eta_obs.shape[-2:]).reshape(-1, n)
    means, covs = [], []
    for s, e in zip(flat_sigma, flat_eta, strict=True):
        gain = torch.linalg.solve(s[:n, :n], s[:n, n:]).mT
        means.append(gain @ e)
        covs.append(s[n:, n:] - gain @ s[:n, n:])
    return torch.stack(means).reshape(*batch, b), torch.stack(covs).reshape(*batch, b, b)


def _conditional_args(batch, d, b=3, r=2, seed=0):
    return conditional_split(d, b, r, batch, seed)[:5]


def _cov(cond):
    return cond.cov_factor @ cond.cov_factor.mT + torch.diag_embed(cond.cov_diag)


# ---------------------------------------------------------------------------- likelihood


def test_log_prob_takes_the_banded_path_for_an_ar_correlation(monkeypatch):
    """``auto`` and ``method="banded"`` evaluate an ``ARCorrelation`` by the block-banded
    capacitance (``"banded"`` is accepted, not refused as for a dense tensor); ``"capacitance"``
    and ``"covariance"`` use its dense matrix instead. All equal the dense float64 Gaussian."""
    calls = _spy(monkeypatch, gls_module, "banded_latent_capacitance")
    loc, factor, diag, value = random_params((2,), 5, 3, 2, seed=1)
    ar = ar_correlation(_phi((2,), 2), 5)
    expected = dense_log_prob(value, loc, factor, diag, ar.dense())
    for method, banded in [("auto", 1), ("banded", 1), ("capacitance", 0), ("covariance", 0)]:
        calls.clear()
        with gls_options(method=method):
            got = gls_log_prob(value, loc, factor, diag, ar)
        assert len(calls) == banded, method
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_banded_log_prob_broadcasts_a_correlation_batch_against_unbatched_factors():
    """A batch carried by ``phi`` only (``[3, p]``, unbatched ``L``, ``d``, ``value``): the banded
    capacitance takes the batch of ``C^{-1}``, each element its own dense Gaussian."""
    loc, factor, diag, value = random_params((), 4, 3, 2, seed=2)
    ar = ar_correlation(_phi((3,), 1, seed=3), 4)
    got = gls_log_prob(value, loc, factor, diag, ar)
    assert got.shape == (3,)
    expected = dense_log_prob(value, loc, factor, diag, ar.dense())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_banded_log_prob_raises_naming_the_capacitance():
    """A banded capacitance that no jitter factorises (NaN in ``L`` of one element) raises
    GLSCholeskyError naming ``GLS capacitance`` (never a silent NaN)."""
    loc, factor, diag, value = random_params((2,), 4, 3, 2, seed=4)
    factor[1, 0, 0, 0] = float("nan")
    with pytest.raises(GLSCholeskyError, match="^GLS capacitance: 1 of 2 matrices of shape 2x2 "):
        gls_log_prob(value, loc, factor, diag, ar_correlation(_phi((2,), 1), 4))


# ---------------------------------------------------------------------------- conditional


@pytest.mark.parametrize("batch", [(), (2, 3)], ids=["unbatched", "two batch dims"])
def test_banded_conditional_reads_trailing_dims_only(batch):
    """The banded conditional with no batch dims and with two (``phi [..., p]``, the history
    ``[..., D-1, B]``) equals the dense float64 Schur complement element by element."""
    args = _conditional_args(batch, 5, seed=5)
    ar = ar_correlation(_phi(batch, 2, seed=6), 5)
    cond = gls_conditional_next(*args, ar)
    mean, cov = _schur(*args, ar.dense())
    assert cond.loc.shape == (*batch, 3)
    torch.testing.assert_close(cond.loc, mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(_cov(cond), cov, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("size", "banded"), [(4, 1), (3, 0)])
def test_conditional_is_banded_from_p_past_steps_on(monkeypatch, size, banded):
    """An AR(3) ``C``: with ``D - 1 = p = 3`` past steps the block-banded computation runs, with
    ``D - 1 = 2 < p`` the dense one; both equal the Schur complement."""
    calls = _spy(monkeypatch, conditional_module, "_latent_banded")
    args = _conditional_args((2,), size, seed=7)
    ar = ar_correlation(_phi((2,), 3, seed=8), size)
    cond = gls_conditional_next(*args, ar)
    assert len(calls) == banded
    mean, cov = _schur(*args, ar.dense())
    torch.testing.assert_close(cond.loc, mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(_cov(cond), cov, rtol=0, atol=1e-10)


def test_banded_conditional_falls_back_on_a_failed_capacitance():
    """A banded capacitance that no jitter factorises (NaN in one element's history ``L``) does
    not raise: that element gets the unconditional ``N(0, L L^T + diag d)``, the jitter
    diagnostics name ``conditional capacitance``, and the other element is exact."""
    eta, factor, diag, factor_next, diag_next = _conditional_args((2,), 4, seed=9)
    factor[0, 0, 0, 0] = float("nan")
    ar = ar_correlation(_phi((2,), 1, seed=10), 4)
    reset_jitter_counts()
    try:
        cond = gls_conditional_next(eta, factor, diag, factor_next, diag_next, ar)
        counts = jitter_counts()
    finally:
        reset_jitter_counts()
    assert counts == {"conditional capacitance": 1}
    assert (cond.num_fallbacks, cond.num_unconditional) == (1, 1)
    torch.testing.assert_close(cond.loc[0], torch.zeros(3, dtype=F64))
    unconditional = factor_next[0] @ factor_next[0].T + torch.diag(diag_next[0])
    torch.testing.assert_close(_cov(cond)[0], unconditional)
    mean, cov = _schur(eta[1], factor[1], diag[1], factor_next[1], diag_next[1], ar.dense()[1])
    torch.testing.assert_close(cond.loc[1], mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(_cov(cond)[1], cov, rtol=0, atol=1e-10)
