"""gls_log_prob's two exact evaluations (issue 13): the ``DR x DR`` capacitance and the dense
``DB x DB`` covariance, each with the analytic or the autograd Cholesky backward, against the dense
float64 MVN reference (values and gradients; masks, broadcast shapes), plus the automatic choice
and the robustness guarantees of the covariance path."""

from __future__ import annotations

import logging

import pytest
import torch

import probforecast.distributions.gls as gls_module
from probforecast.distributions import (
    GLSCholeskyError,
    default_lengthscales,
    gls_log_prob,
    gls_options,
    kernel_mixture_correlation,
)
from probforecast.distributions._backend import choose_method, get_gls_options
from probforecast.distributions._cholesky import reset_warning_state

from .helpers import dense_sigma, random_params

F64 = torch.float64
VARIANTS = [
    (method, analytic) for method in ("capacitance", "covariance") for analytic in (True, False)
]


def _marginal_log_prob(value, loc, factor, diag, corr, mask):
    """Dense reference: ``MultivariateNormal`` of the observed sub-vector of each batch element."""
    sigma = dense_sigma(factor, diag, corr)
    batch = torch.broadcast_shapes(
        value.shape[:-2], loc.shape[:-2], mask.shape[:-2], sigma.shape[:-2]
    )
    d, b = value.shape[-2:]
    sigma = sigma.expand(*batch, d * b, d * b).reshape(-1, d * b, d * b)
    flat = [t.expand(*batch, d, b).reshape(-1, d * b) for t in (value, loc, mask)]
    out = []
    for s, z, mu, o in zip(sigma, *flat, strict=True):
        if not o.any():
            out.append(z.new_zeros(()))
            continue
        dist = torch.distributions.MultivariateNormal(mu[o], s[o][:, o])
        out.append(dist.log_prob(z[o]))
    return torch.stack(out).reshape(batch)


def _case(batch, corr_batch, d, b, r, seed, masked):
    loc, factor, diag, value = random_params(batch, d, b, r, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    logits = torch.randn(*corr_batch, 4, generator=gen, dtype=F64)
    mask = None
    if masked:
        mask = torch.rand(*batch, d, b, generator=gen) < 0.7
        mask.view(-1, d, b)[0] = True  # a fully observed element
        mask.view(-1, d, b)[-1, 0] = False  # a whole time step missing
    return value, loc, factor, diag, logits, mask


def _run(fn, value, loc, factor, diag, logits, mask):
    """``fn(value, loc, L, d, C(softmax(logits)), mask)`` and its gradients w.r.t. loc, L, d, logits
    (through the kernel-mixture ``C``)."""
    d = value.shape[-2]
    scales = torch.tensor(default_lengthscales(4, 0.5), dtype=F64)
    leaves = [t.detach().clone().requires_grad_() for t in (loc, factor, diag, logits)]
    corr = kernel_mixture_correlation(torch.softmax(leaves[-1], -1), scales, d)
    if mask is not None:  # garbage in the missing entries must not matter
        value = torch.where(mask, value, torch.full_like(value, float("nan")))
        leaves_diag = torch.where(mask, leaves[2], torch.zeros_like(leaves[2]))
    else:
        leaves_diag = leaves[2]
    out = fn(value, leaves[0], leaves[1], leaves_diag, corr, mask)
    return out.detach(), torch.autograd.grad(out.sum(), leaves)


def _reference(value, loc, factor, diag, corr, mask):
    if mask is None:
        mask = torch.ones(value.shape, dtype=torch.bool)
    clean = torch.where(mask, value, loc.detach())  # the reference never sees the garbage
    diag = torch.where(mask, diag, torch.ones_like(diag))
    return _marginal_log_prob(clean, loc, factor, diag, corr, mask)


@pytest.mark.parametrize(("method", "analytic"), VARIANTS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("batch", "corr_batch", "d", "b", "r"),
    [
        ((2, 3), (2, 3), 4, 2, 3),  # B < R: the covariance path's home
        ((3,), (), 3, 4, 2),  # B > R, C shared by the batch
        ((2, 1), (1, 3), 5, 3, 3),  # broadcast batch, B == R
    ],
)
def test_paths_match_dense_reference(method, analytic, masked, batch, corr_batch, d, b, r):
    case = _case(batch, corr_batch, d, b, r, seed=7 * d + b + r, masked=masked)
    with gls_options(method=method, analytic_backward=analytic):
        ours, ours_grad = _run(lambda *a: gls_log_prob(*a[:5], mask=a[5]), *case)
    ref, ref_grad = _run(_reference, *case)
    full_batch = torch.broadcast_shapes(batch, corr_batch)
    assert ours.shape == full_batch
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    for name, g1, g2 in zip(
        ("loc", "cov_factor", "cov_diag", "logits"), ours_grad, ref_grad, strict=True
    ):
        torch.testing.assert_close(g1, g2, rtol=1e-8, atol=1e-10, msg=f"grad {name}")
        if masked and name != "logits":
            assert torch.isfinite(g1).all()


@pytest.mark.parametrize("masked", [False, True])
def test_sample_dims_in_front_of_value(masked):
    """``value [S, ..., D, B]`` with the parameters broadcast: one matrix per window, many residuals
    (with a ``[S, ..., D, B]`` mask the covariance path gets one matrix per sample)."""
    d, b, r = 4, 2, 3
    loc, factor, diag, _ = random_params((3,), d, b, r, seed=40)
    corr = kernel_mixture_correlation(
        torch.tensor([0.5, 0.2, 0.3], dtype=F64), torch.tensor([1.0, 2.0], dtype=F64), d
    )
    gen = torch.Generator().manual_seed(41)
    value = torch.randn(5, 1, d, b, generator=gen, dtype=F64)
    mask = (torch.rand(5, 3, d, b, generator=gen) < 0.7) if masked else None
    results = []
    for method in ("capacitance", "covariance"):
        leaves = [t.detach().clone().requires_grad_() for t in (value, loc, factor, diag)]
        with gls_options(method=method):
            out = gls_log_prob(*leaves, corr, mask=mask)
        results.append((out, torch.autograd.grad(out.sum(), leaves)))
    (out_a, grad_a), (out_b, grad_b) = results
    assert out_a.shape == (5, 3)
    torch.testing.assert_close(out_a, out_b, rtol=1e-10, atol=1e-10)
    for g1, g2 in zip(grad_a, grad_b, strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("d", "b", "r", "expected"),
    [
        (24, 8, 10, "covariance"),  # synthetic: DB 192 < DR 240
        (30, 8, 10, "covariance"),  # exchange_rate_nips: 240 < 300
        (48, 20, 10, "capacitance"),  # m4_hourly: DB 960 > DR 480
        (24, 10, 10, "capacitance"),  # B == R: the capacitance (no DB x DB build)
        (24, 9, 10, "covariance"),
        (1, 1, 1, "capacitance"),
        (1, 1, 2, "covariance"),
    ],
)
def test_choose_method_picks_the_smaller_matrix(d, b, r, expected):
    assert choose_method(d, b, r) == expected
    assert choose_method(d, b, r, "capacitance") == "capacitance"
    assert choose_method(d, b, r, "covariance") == "covariance"


def test_gls_log_prob_uses_the_chosen_path(monkeypatch):
    calls = []
    original = gls_module.covariance_terms
    monkeypatch.setattr(
        gls_module, "covariance_terms", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    corr = torch.eye(3, dtype=F64)
    small_b = random_params((), 3, 2, 4, seed=42)  # B < R
    large_b = random_params((), 3, 5, 2, seed=43)  # B > R
    gls_log_prob(small_b[3], *small_b[:3], corr)
    assert len(calls) == 1
    gls_log_prob(large_b[3], *large_b[:3], corr)
    assert len(calls) == 1
    with gls_options(method="covariance"):
        gls_log_prob(large_b[3], *large_b[:3], corr)
    assert len(calls) == 2


def test_gls_options_restores_and_validates():
    before = get_gls_options()
    with pytest.raises(RuntimeError), gls_options(method="covariance", analytic_backward=False):
        assert get_gls_options().method == "covariance"
        assert not get_gls_options().analytic_backward
        raise RuntimeError
    assert get_gls_options() == before
    with pytest.raises(ValueError, match="method"), gls_options(method="dense"):
        pass


def test_covariance_path_jitters_a_singular_corr_like_the_capacitance_path(caplog):
    reset_warning_state()
    d = 3
    loc, factor, diag, value = random_params((2,), d, 2, 4, seed=44)
    corr = torch.stack([torch.ones(d, d, dtype=F64), torch.eye(d, dtype=F64)])  # first: rank 1
    outs = []
    for method in ("capacitance", "covariance"):
        with (
            caplog.at_level(logging.WARNING, logger="probforecast.distributions._cholesky"),
            gls_options(method=method),
        ):
            outs.append(gls_log_prob(value, loc, factor, diag, corr))
        assert "correlation matrix C" in caplog.text and "jitter" in caplog.text
        caplog.clear()
        reset_warning_state()
    assert torch.isfinite(outs[1]).all()
    # same jittered C (C + 1e-6 I) in both: ~1e-10 apart (C^{-1} ~ 1e6 in the capacitance);
    # the unjittered C would be ~3e-6 off
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-8, atol=1e-8)


def test_covariance_path_raises_on_indefinite_or_nan_corr():
    loc, factor, diag, value = random_params((), 2, 1, 3, seed=45)  # B < R: covariance path
    assert choose_method(2, 1, 3) == "covariance"
    corr = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)  # eigenvalue -1
    with pytest.raises(GLSCholeskyError, match="not positive definite"):
        gls_log_prob(value, loc, factor, diag, corr)
    with pytest.raises(GLSCholeskyError, match="NaN"):
        gls_log_prob(value, loc, factor, diag, torch.full((2, 2), float("nan"), dtype=F64))
    with pytest.raises(GLSCholeskyError, match="GLS covariance"):
        gls_log_prob(value, loc, factor, -diag, torch.eye(2, dtype=F64))  # d < 0


def test_float32_paths_agree_at_training_size():
    d, b, r = 30, 8, 10  # exchange_rate_nips
    loc, factor, diag, value = random_params((2,), d, b, r, seed=46, dtype=torch.float32)
    corr = kernel_mixture_correlation(
        torch.tensor([0.3, 0.3, 0.1, 0.3]), torch.tensor([0.5, 1.5, 2.5]), d
    )
    ref = gls_log_prob(*(t.double() for t in (value, loc, factor, diag, corr)))
    for method in ("capacitance", "covariance"):
        with gls_options(method=method):
            out = gls_log_prob(value, loc, factor, diag, corr)
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-2)
