"""The analytic/autograd switch of the ``(log|K|, u^T K^{-1} u)`` helpers, their half-precision
handling and the matrix names in their errors (issue 19, surviving mutants).

Path identification: the analytic helpers are ``once_differentiable`` custom Functions (their
output's ``grad_fn`` is the Function's backward node, and a second derivative raises), while
``analytic=False`` goes through ``torch.linalg.cholesky`` with plain autograd, which gives second
derivatives. The Hessian of ``log N(z; mu, Sigma)`` in ``mu`` is ``-Sigma^{-1}`` (closed form).
"""

from __future__ import annotations

import pytest
import torch

from probforecast.distributions import (
    GLSMultivariateNormal,
    gls_log_prob,
    gls_options,
    log_det_corr,
)
from probforecast.distributions._capacitance import capacitance_logdet_quad, spd_logdet_quad
from probforecast.distributions._cholesky import (
    GLSCholeskyError,
    jitter_counts,
    reset_jitter_counts,
)
from probforecast.distributions._covariance_path import covariance_terms, masked_covariance

from .helpers import dense_sigma, random_params

F64 = torch.float64


def _corr(d):
    x = torch.linspace(0, 1, d, dtype=F64)
    return torch.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.1 * torch.eye(d, dtype=F64)


def _spd(n, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2 * n, generator=gen, dtype=F64)
    return (x @ x.T / n + torch.eye(n, dtype=F64)).to(dtype)


def _blocks(d, r, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(d, r, 2 * r, generator=gen, dtype=F64)
    return x @ x.mT / r


def _node(t):
    return type(t.grad_fn).__name__


def _graph_nodes(t):
    """Names of every autograd node behind ``t``."""
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


def _second_derivative_works(out, x):
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    return h


def test_spd_logdet_quad_default_is_analytic_and_false_is_autograd():
    """``spd_logdet_quad`` defaults to the analytic Function; ``analytic=False`` is plain
    autograd (second derivatives work) with the same values and first derivatives."""
    k = _spd(4).requires_grad_()
    u = torch.randn(4, dtype=F64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    logdet, quad = spd_logdet_quad(k, u)
    assert _node(logdet) == "SPDLogdetQuadBackward" and _node(quad) == "SPDLogdetQuadBackward"
    ref_logdet, ref_quad = spd_logdet_quad(k, u, analytic=False)
    assert "LogdetQuad" not in _node(ref_quad)
    torch.testing.assert_close(logdet, torch.linalg.slogdet(k.detach())[1])
    torch.testing.assert_close(ref_quad, u.detach() @ torch.linalg.solve(k.detach(), u.detach()))
    # d^2 (u^T K^{-1} u) / du^2 = 2 K^{-1}: only the autograd path is twice differentiable
    (g,) = torch.autograd.grad(ref_quad, u, create_graph=True)
    hess = torch.stack([torch.autograd.grad(g[i], u, retain_graph=True)[0] for i in range(4)])
    torch.testing.assert_close(hess, 2 * torch.linalg.inv(k.detach()))
    with pytest.raises(RuntimeError):
        _second_derivative_works(quad, u)


def test_capacitance_logdet_quad_analytic_flag_selects_the_path():
    """``capacitance_logdet_quad``: default analytic (CapacitanceLogdetQuad), ``analytic=False``
    autograd through the assembled capacitance; both equal the dense float64 log-determinant
    and quadratic form of ``C^{-1} ⊗ I_R + blkdiag(M_k)``."""
    d, r = 3, 2
    blocks = _blocks(d, r).requires_grad_()
    corr_inv = torch.linalg.inv(_corr(d)).contiguous()
    u = torch.randn(d * r, dtype=F64, generator=torch.Generator().manual_seed(2))
    u.requires_grad_()
    cap = torch.kron(corr_inv, torch.eye(r, dtype=F64)) + torch.block_diag(*blocks.detach())
    logdet, quad = capacitance_logdet_quad(blocks, corr_inv, u)
    assert _node(logdet) == "CapacitanceLogdetQuadBackward"
    ref_logdet, ref_quad = capacitance_logdet_quad(blocks, corr_inv, u, analytic=False)
    assert "LogdetQuad" not in _node(ref_logdet)
    for a, b in ((logdet, ref_logdet), (quad, ref_quad)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(logdet, torch.linalg.slogdet(cap)[1])
    torch.testing.assert_close(quad, u.detach() @ torch.linalg.solve(cap, u.detach()))
    h = _second_derivative_works(ref_quad, u)  # autograd path: twice differentiable
    torch.testing.assert_close(h, 2 * torch.linalg.inv(cap).sum(0))
    with pytest.raises(RuntimeError):
        _second_derivative_works(quad, u)


@pytest.mark.parametrize("mask", [None, "some"])
def test_covariance_terms_analytic_flag_selects_the_path(mask):
    """``covariance_terms``: default analytic (CovarianceLogdetQuad), ``analytic=False`` plain
    autograd; both give ``log|Sigma_oo|`` and ``eta_o^T Sigma_oo^{-1} eta_o`` of the dense
    covariance restricted to the observed entries."""
    d, b, r = 3, 2, 3
    _, factor, diag, eta = random_params((), d, b, r, seed=4)
    corr = _corr(d)
    m = None if mask is None else torch.tensor([[True, False], [True, True], [False, True]])
    if m is not None:
        eta = torch.where(m, eta, torch.zeros_like(eta))
    eta.requires_grad_()
    logdet, quad = covariance_terms(eta, factor, diag, corr, m)
    assert _node(quad) == "CovarianceLogdetQuadBackward"
    ref_logdet, ref_quad = covariance_terms(eta, factor, diag, corr, m, analytic=False)
    assert "LogdetQuad" not in _node(ref_quad)
    keep = torch.ones(d * b, dtype=torch.bool) if m is None else m.reshape(-1)
    sigma = dense_sigma(factor, diag, corr)[keep][:, keep]
    e = eta.detach().reshape(-1)[keep]
    for got in (logdet, ref_logdet):
        torch.testing.assert_close(got, torch.linalg.slogdet(sigma)[1])
    for got in (quad, ref_quad):
        torch.testing.assert_close(got, e @ torch.linalg.solve(sigma, e))
    _second_derivative_works(ref_quad, eta)
    with pytest.raises(RuntimeError):
        _second_derivative_works(quad, eta)


@pytest.mark.parametrize("method", ["capacitance", "covariance"])
def test_gls_log_prob_without_analytic_backward_has_the_exact_hessian(method):
    """With ``gls_options(analytic_backward=False)`` the log-density is plain autograd on both
    paths: its Hessian in ``loc`` is ``-Sigma^{-1}`` (dense float64 reference) and no analytic
    Function is in the graph; with the default options the path's analytic Function is."""
    d, b, r = 2, 2, 3
    loc, factor, diag, value = random_params((), d, b, r, seed=6)
    corr = _corr(d)
    sigma_inv = torch.linalg.inv(dense_sigma(factor, diag, corr))
    loc = loc.requires_grad_()
    with gls_options(method=method, analytic_backward=False):
        lp = gls_log_prob(value, loc, factor, diag, corr)
        (g,) = torch.autograd.grad(lp, loc, create_graph=True)
        g = g.reshape(-1)
        hess = torch.stack(
            [torch.autograd.grad(g[i], loc, retain_graph=True)[0].reshape(-1) for i in range(4)]
        )
    torch.testing.assert_close(hess, -sigma_inv)
    assert not any("LogdetQuad" in n for n in _graph_nodes(lp))
    with gls_options(method=method):
        lp = gls_log_prob(value, loc, factor, diag, corr)
    name = {"capacitance": "CapacitanceLogdetQuadBackward"}.get(
        method, "CovarianceLogdetQuadBackward"
    )
    assert name in _graph_nodes(lp)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_capacitance_half_inputs_are_assembled_in_float32(half):
    """Half-precision ``blocks``/``C^{-1}`` are assembled and factorised in float32: the result
    matches the float64 value of the same (half-rounded) inputs to float32 accuracy (1e-5),
    far below the ~1e-3 error of a half-precision assembly."""
    d, r = 3, 2
    blocks = (_blocks(d, r, seed=3) + 0.3).to(half)
    corr_inv = (torch.linalg.inv(_corr(d)).contiguous() + 0.01).to(half)
    u = torch.randn(d * r, generator=torch.Generator().manual_seed(5)).to(half)
    cap = torch.kron(corr_inv.double(), torch.eye(r, dtype=F64)) + torch.block_diag(
        *blocks.double()
    )
    logdet, quad = capacitance_logdet_quad(blocks, corr_inv, u)
    assert logdet.dtype == torch.float32
    torch.testing.assert_close(logdet.double(), torch.linalg.slogdet(cap)[1], rtol=1e-5, atol=1e-5)
    ref_quad = u.double() @ torch.linalg.solve(cap, u.double())
    torch.testing.assert_close(quad.double(), ref_quad, rtol=1e-5, atol=1e-5)


def _nan_matrix(n=3):
    k = _spd(n).clone()
    k[0, 0] = float("nan")
    return k


def test_errors_name_the_matrix():
    """A matrix that no jitter factorises raises GLSCholeskyError starting with its name: the
    caller's ``name`` (analytic or not), ``matrix`` by default, ``GLS capacitance`` and ``GLS
    covariance`` for the likelihood paths and the entropy."""
    u = torch.ones(3, dtype=F64)
    for analytic in (True, False):
        with pytest.raises(GLSCholeskyError, match="^K: "):
            spd_logdet_quad(_nan_matrix(), u, name="K", analytic=analytic)
        with pytest.raises(GLSCholeskyError, match="^matrix: "):
            spd_logdet_quad(_nan_matrix(), u, analytic=analytic)
        blocks = _blocks(3, 1)
        blocks[0, 0, 0] = float("nan")
        with pytest.raises(GLSCholeskyError, match="^GLS capacitance: "):
            capacitance_logdet_quad(blocks, torch.eye(3, dtype=F64), u, analytic=analytic)
        _, factor, diag, eta = random_params((), 2, 2, 3, seed=1)
        factor[0, 0, 0] = float("nan")
        with pytest.raises(GLSCholeskyError, match="^GLS covariance: "):
            covariance_terms(eta, factor, diag, _corr(2), analytic=analytic)
    loc, factor, diag, _ = random_params((), 2, 3, 2, seed=2)
    factor[0, 0, 0] = float("nan")
    dist = GLSMultivariateNormal(loc, factor, diag, _corr(2), validate_args=False)
    with pytest.raises(GLSCholeskyError, match="^GLS capacitance: "):
        dist.entropy()


def test_masked_covariance_keeps_float32_under_a_float64_default_dtype():
    """``masked_covariance`` of float32 inputs is float32 whatever torch's default dtype (the
    identity rows of missing entries are built in ``Sigma``'s dtype)."""
    _, factor, diag, _ = random_params((), 2, 2, 2, seed=3)
    mask = torch.tensor([[True, False], [True, True]])
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        sigma = masked_covariance(factor.float(), diag.float(), _corr(2).float(), mask)
    finally:
        torch.set_default_dtype(old)
    assert sigma.dtype == torch.float32
    assert sigma[1, 1] == 1.0 and sigma[1, 0] == 0.0  # missing entry (0, 1): identity row


def test_jitter_diagnostics_are_keyed_by_matrix_name():
    """Recovered (jittered) factorisations are counted in :func:`jitter_counts` under the name of
    the matrix: ``correlation matrix C`` (both likelihood paths and ``log_det_corr``), ``GLS
    capacitance`` and ``GLS covariance`` (analytic or not)."""
    ones = torch.ones(2, 2, dtype=F64)  # rank one: recovered by the smallest jitter
    reset_jitter_counts()
    log_det_corr(ones)
    loc, factor, diag, value = random_params((), 2, 2, 3, seed=7)
    for method in ("capacitance", "covariance"):
        with gls_options(method=method):
            gls_log_prob(value, loc, factor, diag, ones)
    assert jitter_counts() == {"correlation matrix C": 3}
    singular_blocks = torch.zeros(1, 2, 2, dtype=F64)
    singular_blocks[0, 1, 1] = -1.0  # Cap = I + diag(0, -1) = diag(1, 0)
    zero_diag = torch.zeros(2, 2, dtype=F64)  # Sigma = F F^T (rank 1 < 4)
    one_factor = torch.ones(2, 2, 1, dtype=F64)
    for analytic in (True, False):
        reset_jitter_counts()
        capacitance_logdet_quad(
            singular_blocks, torch.eye(1, dtype=F64), torch.ones(2, dtype=F64), analytic=analytic
        )
        covariance_terms(
            zero_diag, one_factor, zero_diag, torch.eye(2, dtype=F64), analytic=analytic
        )
        assert jitter_counts() == {"GLS capacitance": 1, "GLS covariance": 1}
    reset_jitter_counts()


@pytest.mark.parametrize("method", ["capacitance", "covariance"])
def test_second_derivatives_through_the_analytic_backward_raise_instead_of_being_wrong(method):
    """``create_graph=True`` through the analytic Functions: the capacitance path used to return
    a gradient treated as constant (a silently wrong Hessian, since ``once_differentiable``
    only refuses incoming gradients that require grad); both paths now raise, naming the fix.
    First derivatives are unchanged."""
    d, b, r = 2, 2, 3
    loc, factor, diag, value = random_params((), d, b, r, seed=6)
    loc, factor = loc.requires_grad_(), factor.requires_grad_()
    with gls_options(method=method):
        lp = gls_log_prob(value, loc, factor, diag, _corr(d))
        with pytest.raises(RuntimeError, match="first derivatives only.*analytic=False"):
            torch.autograd.grad(lp, (loc, factor), create_graph=True)
        lp = gls_log_prob(value, loc, factor, diag, _corr(d))
        (g,) = torch.autograd.grad(lp, loc)
    sigma_inv = torch.linalg.inv(dense_sigma(factor.detach(), diag, _corr(d)))
    residual = (value - loc.detach()).reshape(-1)
    torch.testing.assert_close(g.reshape(-1), sigma_inv @ residual)
