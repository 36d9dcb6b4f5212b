"""Analytic backward of ``(log|K|, u^T K^{-1} u)`` (issue 13): float64 gradcheck and exact
agreement with autograd through the Cholesky factorisation, for the generic
:class:`SPDLogdetQuad`, the fused :class:`CapacitanceLogdetQuad` and :class:`CovarianceLogdetQuad`,
including broadcast batch shapes, masks, jitter and half precision."""

from __future__ import annotations

import re

import pytest
import torch

from probforecast.distributions._capacitance import (
    FIRST_ORDER_ONLY,
    CapacitanceLogdetQuad,
    SPDLogdetQuad,
    capacitance_logdet_quad,
    first_order,
    spd_logdet_quad,
)
from probforecast.distributions._covariance_path import (
    CovarianceLogdetQuad,
    block_indicator,
    kron_ones,
    masked_covariance,
)
from probforecast.distributions._gls_ops import assemble_capacitance

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _spd(batch, n, seed):
    x = torch.randn(*batch, n, n, generator=_gen(seed), dtype=F64)
    return x @ x.mT / n + torch.eye(n, dtype=F64)


def _corr(batch, d, seed):
    """A random SPD correlation-like matrix (exactly symmetric, unit-ish diagonal)."""
    x = torch.randn(*batch, d, d + 2, generator=_gen(seed), dtype=F64)
    c = x @ x.mT
    s = c.diagonal(dim1=-2, dim2=-1).rsqrt()
    return c * s[..., :, None] * s[..., None, :]


def _grads(fn, inputs, weights=(0.7, -1.3)):
    """Gradients of ``w1 sum(out1) + w2 sum(out2)`` w.r.t. ``inputs`` (distinct output weights
    catch a swapped or mis-scaled output gradient)."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out1, out2 = fn(*leaves)
    total = weights[0] * out1.sum() + weights[1] * out2.sum()
    return (out1.detach(), out2.detach()), torch.autograd.grad(total, leaves)


def _assert_same(fn_a, fn_b, inputs, names):
    (va, ga), (vb, gb) = _grads(fn_a, inputs), _grads(fn_b, inputs)
    for x, y in zip(va, vb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    for name, x, y in zip(names, ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11, msg=f"gradient w.r.t. {name}")


# ---------------------------------------------------------------------------- SPDLogdetQuad


def test_spd_logdet_quad_gradcheck():
    n = 5
    x = torch.randn(2, n, n, generator=_gen(0), dtype=F64, requires_grad=True)
    u = torch.randn(3, 2, n, generator=_gen(1), dtype=F64, requires_grad=True)

    def fn(x, u):  # a symmetric K from a free parameter: gradcheck perturbs single entries
        k = x @ x.mT / n + torch.eye(n, dtype=F64)
        return SPDLogdetQuad.apply(k, u, "K")

    assert torch.autograd.gradcheck(fn, (x, u))


@pytest.mark.parametrize(
    ("k_batch", "u_batch"),
    [((3,), (3,)), ((), (4, 2)), ((3, 1), (3, 4)), ((1, 4), (2, 3, 4))],
)
def test_spd_logdet_quad_matches_autograd_through_cholesky(k_batch, u_batch):
    n = 6
    k, u = _spd(k_batch, n, 2), torch.randn(*u_batch, n, generator=_gen(3), dtype=F64)
    _assert_same(
        lambda k, u: spd_logdet_quad(k, u, analytic=True),
        lambda k, u: spd_logdet_quad(k, u, analytic=False),
        (k, u),
        ("K", "u"),
    )


def test_spd_logdet_quad_gradient_formula():
    """``dK = g1 K^{-1} - g2 m m^T`` and ``du = 2 g2 m`` written out (the signs and the 2)."""
    n = 4
    k, u = _spd((), n, 4), torch.randn(n, generator=_gen(5), dtype=F64)
    (_, _), (gk, gu) = _grads(lambda k, u: SPDLogdetQuad.apply(k, u, "K"), (k, u), (0.7, -1.3))
    inv = torch.linalg.inv(k)
    m = inv @ u
    torch.testing.assert_close(gk, 0.7 * inv + 1.3 * torch.outer(m, m))
    torch.testing.assert_close(gu, -2.6 * m)


def test_spd_logdet_quad_jittered_matrix_matches_autograd():
    """A singular ``K`` gets a jitter inside ``safe_cholesky``; both backwards see ``K + j I``."""
    n = 4
    v = torch.randn(n, 1, generator=_gen(6), dtype=F64)
    k = (v @ v.T).expand(2, n, n).clone()
    k[1] += torch.eye(n, dtype=F64)  # healthy element next to the jittered one
    u = torch.randn(2, n, generator=_gen(7), dtype=F64)
    (va, ga), (vb, gb) = (
        _grads(lambda k, u, a=a: spd_logdet_quad(k, u, analytic=a), (k, u)) for a in (True, False)
    )
    assert all(torch.isfinite(t).all() for t in (*va, *ga))
    for x, y in zip((*va, *ga), (*vb, *gb), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------------------- capacitance


def _cap_inputs(batch, corr_batch, u_batch, d=3, r=2, seed=10):
    x = torch.randn(*batch, d, r, r + 1, generator=_gen(seed), dtype=F64)
    blocks = x @ x.mT  # PSD R x R blocks, as L_k^T P_k L_k
    corr_inv = torch.cholesky_inverse(torch.linalg.cholesky(_corr(corr_batch, d, seed + 1)))
    u = torch.randn(*u_batch, d * r, generator=_gen(seed + 2), dtype=F64)
    return blocks, corr_inv, u


def test_capacitance_function_gradcheck():
    _, _, u = _cap_inputs((2,), (2,), (2,))
    x = torch.randn(2, 3, 2, 3, generator=_gen(12), dtype=F64, requires_grad=True)
    c = torch.randn(2, 3, 3, generator=_gen(11), dtype=F64, requires_grad=True)
    u.requires_grad_()

    def fn(x, c, u):  # symmetric inputs from free parameters
        blocks = x @ x.mT
        corr_inv = c @ c.mT + 3 * torch.eye(3, dtype=F64)
        return CapacitanceLogdetQuad.apply(blocks, corr_inv, u, "cap")

    assert torch.autograd.gradcheck(fn, (x, c, u))


@pytest.mark.parametrize(
    ("batch", "corr_batch", "u_batch"),
    [((2, 3), (2, 3), (2, 3)), ((2, 3), (), (2, 3)), ((3,), (1,), (4, 2, 3)), ((), (2,), (2,))],
)
def test_capacitance_function_matches_autograd(batch, corr_batch, u_batch):
    inputs = _cap_inputs(batch, corr_batch, u_batch)
    _assert_same(
        lambda b, c, u: capacitance_logdet_quad(b, c, u, analytic=True),
        lambda b, c, u: capacitance_logdet_quad(b, c, u, analytic=False),
        inputs,
        ("blocks", "corr_inv", "u"),
    )


def test_capacitance_function_equals_generic_on_assembled_matrix():
    blocks, corr_inv, u = _cap_inputs((2,), (2,), (2,), d=4, r=3)
    _assert_same(
        lambda b, c, u: CapacitanceLogdetQuad.apply(b, c, u, "cap"),
        lambda b, c, u: SPDLogdetQuad.apply(assemble_capacitance(b, c), u, "cap"),
        (blocks, corr_inv, u),
        ("blocks", "corr_inv", "u"),
    )


# ---------------------------------------------------------------------------- covariance


def _cov_inputs(batch, corr_batch, eta_batch, d=3, b=2, r=3, seed=20):
    factor = torch.randn(*batch, d * b, r, generator=_gen(seed), dtype=F64) / r**0.5
    corr = _corr(corr_batch, d, seed + 1)
    diag = 0.3 + torch.rand(*batch, d * b, generator=_gen(seed + 2), dtype=F64)
    eta = torch.randn(*eta_batch, d * b, generator=_gen(seed + 3), dtype=F64)
    return factor, corr, diag, eta


def _cov_reference(factor, corr, diag, eta):
    """Plain autograd: dense ``Sigma`` (expand/reshape, no custom code) and the Cholesky."""
    d = corr.shape[-1]
    sigma = masked_covariance(factor.unflatten(-2, (d, -1)), diag.unflatten(-1, (d, -1)), corr)
    return spd_logdet_quad(sigma, eta, analytic=False)


def test_covariance_function_gradcheck():
    factor, _, diag, eta = _cov_inputs((2,), (2,), (2,))
    c = torch.randn(2, 3, 3, generator=_gen(21), dtype=F64)
    leaves = [t.requires_grad_() for t in (factor, c, diag, eta)]

    def fn(f, c, dg, e):  # a symmetric C from a free parameter
        corr = c @ c.mT + 3 * torch.eye(3, dtype=F64)
        return CovarianceLogdetQuad.apply(f, corr, dg, e, "Sigma")

    assert torch.autograd.gradcheck(fn, tuple(leaves))


@pytest.mark.parametrize(
    ("batch", "corr_batch", "eta_batch"),
    [((2, 3), (2, 3), (2, 3)), ((2, 3), (), (2, 3)), ((3,), (1,), (4, 2, 3)), ((), (2,), (2,))],
)
def test_covariance_function_matches_autograd(batch, corr_batch, eta_batch):
    _assert_same(
        lambda f, c, dg, e: CovarianceLogdetQuad.apply(f, c, dg, e, "Sigma"),
        _cov_reference,
        _cov_inputs(batch, corr_batch, eta_batch, d=4, b=3, r=2),
        ("cov_factor", "corr", "cov_diag", "eta"),
    )


def test_kron_ones_is_block_constant():
    corr = _corr((2,), 3, 30)
    big = kron_ones(corr, 2)
    torch.testing.assert_close(big[1], torch.kron(corr[1], torch.ones(2, 2, dtype=F64)))


def test_block_indicator_sums_blocks_on_the_requested_device():
    """``E = I_D ⊗ 1_B`` (``E^T X E`` sums the ``B x B`` blocks of ``X``), made in the requested
    dtype and on the requested device even when torch's default device differs (meta here)."""
    x = torch.randn(6, 6, generator=_gen(31), dtype=F64)
    with torch.device("meta"):
        ind = block_indicator(3, 2, F64, torch.device("cpu"))
    assert ind.device.type == "cpu" and ind.dtype == F64
    torch.testing.assert_close(
        ind, torch.kron(torch.eye(3, dtype=F64), torch.ones(2, 1, dtype=F64))
    )
    blocks = x.reshape(3, 2, 3, 2).sum((1, 3))
    torch.testing.assert_close(ind.mT @ x @ ind, blocks, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- first_order


class _Cube(torch.autograd.Function):
    """``(x, y) -> (x^3, x y)`` with a :func:`first_order` backward: two inputs and two outputs,
    so that the wrapper must hand ``ctx`` and every output gradient through in order."""

    @staticmethod
    def forward(ctx, x, y):  # noqa: D102
        ctx.save_for_backward(x, y)
        return x**3, x * y

    @staticmethod
    def backward(ctx, g_cube, g_prod):  # noqa: D102
        x, y = ctx.saved_tensors
        return 3 * x**2 * g_cube + y * g_prod, x * g_prod


def test_first_order_backward_gives_the_gradient_and_refuses_create_graph():
    """``first_order(backward)`` passes ``ctx`` and all output gradients to ``backward``
    (float64 gradcheck of a two-output Function), and a backward asked to build a graph raises
    the ``FIRST_ORDER_ONLY`` RuntimeError instead of returning a constant gradient."""

    class Wrapped(_Cube):
        backward = staticmethod(first_order(_Cube.backward))

    x = torch.randn(4, generator=_gen(32), dtype=F64, requires_grad=True)
    y = torch.randn(4, generator=_gen(33), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(Wrapped.apply, (x, y))
    out = Wrapped.apply(x, y)
    with pytest.raises(RuntimeError, match="^" + re.escape(FIRST_ORDER_ONLY) + "$"):
        torch.autograd.grad(out[0].sum() + out[1].sum(), (x, y), create_graph=True)


# ---------------------------------------------------------------------------- half precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_give_finite_values_and_same_dtype_grads(dtype):
    blocks, corr_inv, u = _cap_inputs((2,), (2,), (2,))
    factor, corr, diag, eta = _cov_inputs((2,), (2,), (2,))
    for fn, inputs in (
        (lambda *a: CapacitanceLogdetQuad.apply(*a, "cap"), (blocks, corr_inv, u)),
        (lambda *a: CovarianceLogdetQuad.apply(*a, "Sigma"), (factor, corr, diag, eta)),
    ):
        ref, _ = _grads(fn, inputs)
        half = [t.to(dtype).requires_grad_() for t in inputs]
        out = fn(*half)
        assert all(o.dtype == torch.float32 for o in out)
        for o, r in zip(out, ref, strict=True):
            torch.testing.assert_close(o.double(), r, rtol=0.05, atol=0.1)
        grads = torch.autograd.grad(out[0].sum() - out[1].sum(), half)
        assert all(g.dtype == dtype and torch.isfinite(g).all() for g in grads)
