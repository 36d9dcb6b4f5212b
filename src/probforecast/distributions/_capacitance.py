"""``(log|K|, u^T K^{-1} u)`` of batches of SPD matrices with an analytic backward.

Both GLS paths reduce the likelihood to these two numbers of one SPD matrix ``K``: the ``DR x DR``
capacitance with ``u = A^T E^{-1} eta`` (Woodbury, this file), or the ``DB x DB`` covariance with
``u = eta`` (``_covariance_path``). Autograd through ``torch.linalg.cholesky`` (two full triangular
solves, ``tril`` copies and a ``bmm`` per matrix) was most of a GPVar+GLS step; the closed form

    d log|K| / dK = K^{-1},   d (u^T K^{-1} u) / dK = -m m^T,   d (u^T K^{-1} u) / du = 2 m,

with ``m = K^{-1} u``, needs one ``cholesky_inverse`` of the factor already computed forward.

Gradient convention: ``K`` is treated as a general (not symmetry-constrained) matrix, exactly as
autograd through ``torch.linalg.cholesky`` does; both give the symmetric matrices above (checked
in float64 in ``tests/distributions/test_capacitance.py``). If :func:`safe_cholesky` adds a
jitter ``j`` to an element, ``K`` above is ``K + j I`` for it (the jitter is a constant), again
as with autograd. Only first derivatives are provided: a backward asked to build a graph
(``create_graph=True``, e.g. a Hessian) raises instead of returning a constant. Half-precision
inputs are computed in float32 (as :func:`safe_cholesky` does) and their gradients cast back.

:class:`CapacitanceLogdetQuad` fuses the assembly of ``K = C^{-1} ⊗ I_R + blkdiag(M_k)`` into
the same Function, so that the ``DR x DR`` gradient ``G`` is never formed: only its diagonal
``R x R`` blocks (for ``M_k``) and its traces over ``r`` (for ``C^{-1}``) are read.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from probforecast.distributions._cholesky import safe_cholesky
from probforecast.distributions._gls_ops import assemble_capacitance, solve_lower

FIRST_ORDER_ONLY = (
    "the analytic GLS backward provides first derivatives only; for higher orders (create_graph"
    "=True) use analytic=False (autograd through the Cholesky factorisation)"
)


def first_order(backward):
    """``once_differentiable`` that also refuses ``create_graph=True``: grad mode is on during
    such a backward, and ``once_differentiable`` alone would return a constant gradient."""
    inner = once_differentiable(backward)

    def wrapper(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(FIRST_ORDER_ONLY)
        return inner(ctx, *grads)

    return wrapper


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half precision (no half Cholesky on CPU), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def factorise(matrix: Tensor, u: Tensor, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(L, w = L^{-1} u, log|K|, ||w||^2)`` with ``L = chol(K)`` from :func:`safe_cholesky`.

    ``matrix [...K, n, n]``, ``u [...u, n]`` -> ``L [...K, n, n]``, ``w [..., n]``,
    ``log|K| [...K]``, ``||w||^2 [...]`` (``...`` = broadcast of ``...K`` and ``...u``).
    """
    tril = safe_cholesky(matrix, name=name).tril
    w = solve_lower(tril, u.to(tril.dtype))
    logdet = 2 * tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return tril, w, logdet, w.square().sum(-1)


def scaled(grad: Tensor | None, value: Tensor | None, extra_dims: int) -> Tensor | None:
    """``grad[..., None * extra_dims] * value`` (``None`` if either is ``None``)."""
    if grad is None or value is None:
        return None
    return grad.reshape(grad.shape + (1,) * extra_dims) * value


def add_grads(*terms: Tensor | None, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """Sum of the non-``None`` terms, summed to ``shape`` (undoing broadcasting), cast to ``dtype``."""
    out = None
    for term in terms:
        if term is not None:
            term = term.sum_to_size(shape) if term.shape != shape else term
            out = term if out is None else out + term
    if out is None:
        raise RuntimeError("no gradient term")  # unreachable: autograd passes one output grad
    return out.expand(shape).to(dtype)


class SPDLogdetQuad(torch.autograd.Function):
    """``(K [...K, n, n], u [...u, n]) -> (log|K| [...K], u^T K^{-1} u [...])``.

    The second output has the broadcast batch shape of both (a matrix may be shared by many
    vectors, e.g. sample dims in front of ``u``). Backward: ``dK = g1 K^{-1} - g2 m m^T``,
    ``du = 2 g2 m`` (``g1, g2`` the output gradients, ``m = K^{-1} u``), each summed over the
    dims that were broadcast.
    """

    @staticmethod
    def forward(ctx, matrix: Tensor, u: Tensor, name: str):  # noqa: D102
        tril, w, logdet, quad = factorise(matrix, u, name)
        ctx.save_for_backward(tril, w)
        ctx.meta = (matrix.shape, matrix.dtype, u.shape, u.dtype)
        return logdet, quad

    @staticmethod
    @first_order
    def backward(ctx, g_logdet: Tensor | None, g_quad: Tensor | None):  # noqa: D102
        tril, w = ctx.saved_tensors
        matrix_shape, matrix_dtype, u_shape, u_dtype = ctx.meta
        grad_matrix = grad_u = None
        m = None if g_quad is None else solve_lower(tril, w, adjoint=True)  # K^{-1} u
        if ctx.needs_input_grad[0]:
            inv = None if g_logdet is None else torch.cholesky_inverse(tril)
            outer = None if m is None else -m.unsqueeze(-1) * m.unsqueeze(-2)
            grad_matrix = add_grads(
                scaled(g_logdet, inv, 2),
                scaled(g_quad, outer, 2),
                shape=matrix_shape,
                dtype=matrix_dtype,
            )
        if ctx.needs_input_grad[1] and m is not None:
            grad_u = add_grads(scaled(g_quad, 2 * m, 1), shape=u_shape, dtype=u_dtype)
        return grad_matrix, grad_u, None


class CapacitanceLogdetQuad(torch.autograd.Function):
    """``(M [..., D, R, R], C^{-1} [..., D, D], u [..., DR]) -> (log|K|, u^T K^{-1} u)`` with
    ``K = C^{-1} ⊗ I_R + blkdiag(M_k)`` (``DR x DR``, time-major ``(k, r) -> k R + r``).

    With ``G = g1 K^{-1} - g2 m m^T`` the gradient w.r.t. ``K`` (see :class:`SPDLogdetQuad`):

    - ``dM_k = G[(k, .), (k, .)]`` (diagonal ``R x R`` block ``k``)
      ``= g1 K^{-1}_kk - g2 m_k m_k^T`` with ``m_k = m[kR : kR + R]``;
    - ``dC^{-1}[i, j] = sum_r G[(i, r), (j, r)] = g1 sum_r K^{-1}[(i, r), (j, r)] - g2 (m m^T)``
      summed the same way, i.e. ``- g2 (Mm Mm^T)[i, j]`` with ``Mm = m`` reshaped ``[D, R]``;
    - ``du = 2 g2 m``.

    These are what autograd gives through :func:`assemble_capacitance` (a copy into the
    ``(i, r, j, r)`` entries and an add into the diagonal blocks).
    """

    @staticmethod
    def forward(ctx, blocks: Tensor, corr_inv: Tensor, u: Tensor, name: str):  # noqa: D102
        dtype = work_dtype(blocks.dtype)
        cap = assemble_capacitance(blocks.to(dtype), corr_inv.to(dtype))
        tril, w, logdet, quad = factorise(cap, u, name)
        ctx.save_for_backward(tril, w)
        ctx.meta = [(t.shape, t.dtype) for t in (blocks, corr_inv, u)]
        return logdet, quad

    @staticmethod
    @first_order
    def backward(ctx, g_logdet: Tensor | None, g_quad: Tensor | None):  # noqa: D102
        tril, w = ctx.saved_tensors
        (blocks_shape, blocks_dtype), (cinv_shape, cinv_dtype), (u_shape, u_dtype) = ctx.meta
        d, r = blocks_shape[-3], blocks_shape[-1]
        inv_blocks = inv_traces = None
        if g_logdet is not None and (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            inv = torch.cholesky_inverse(tril).unflatten(-1, (d, r)).unflatten(-3, (d, r))
            inv_blocks = inv.diagonal(dim1=-4, dim2=-2).movedim(-1, -3)  # [..., D, R, R]
            inv_traces = inv.diagonal(dim1=-3, dim2=-1).sum(-1)  # [..., D, D]
        m_blocks = m_outer = m = None
        if g_quad is not None:
            m = solve_lower(tril, w, adjoint=True)  # K^{-1} u, [..., DR]
            mm = m.unflatten(-1, (d, r))  # [..., D, R]
            m_blocks = -mm.unsqueeze(-1) * mm.unsqueeze(-2)  # [..., D, R, R]
            m_outer = -mm @ mm.mT  # [..., D, D]
        grads: list[Tensor | None] = [None, None, None, None]
        if ctx.needs_input_grad[0]:
            grads[0] = add_grads(
                scaled(g_logdet, inv_blocks, 3),
                scaled(g_quad, m_blocks, 3),
                shape=blocks_shape,
                dtype=blocks_dtype,
            )
        if ctx.needs_input_grad[1]:
            grads[1] = add_grads(
                scaled(g_logdet, inv_traces, 2),
                scaled(g_quad, m_outer, 2),
                shape=cinv_shape,
                dtype=cinv_dtype,
            )
        if ctx.needs_input_grad[2] and m is not None:
            grads[2] = add_grads(scaled(g_quad, 2 * m, 1), shape=u_shape, dtype=u_dtype)
        return tuple(grads)


def spd_logdet_quad(
    matrix: Tensor, u: Tensor, *, name: str = "matrix", analytic: bool = True
) -> tuple[Tensor, Tensor]:
    """``(log|K|, u^T K^{-1} u)`` for SPD ``matrix [..., n, n]`` and ``u [..., n]``.

    ``K`` is factorised by :func:`safe_cholesky` (jitter escalation on failing elements,
    :class:`GLSCholeskyError` if even the largest jitter fails). ``analytic=True`` uses
    :class:`SPDLogdetQuad`'s closed-form backward; ``analytic=False`` lets autograd go through
    the Cholesky factorisation (the reference, and the old timing in the benchmark).
    """
    if analytic:
        return SPDLogdetQuad.apply(matrix, u, name)
    return factorise(matrix, u, name)[2:]


def capacitance_logdet_quad(
    blocks: Tensor, corr_inv: Tensor, u: Tensor, *, analytic: bool = True
) -> tuple[Tensor, Tensor]:
    """``(log|Cap|, u^T Cap^{-1} u)`` with ``Cap = C^{-1} ⊗ I_R + blkdiag(blocks)``.

    ``blocks [..., D, R, R]``, ``corr_inv [..., D, D]``, ``u [..., DR]`` -> ``([...Cap], [...])``.
    ``analytic=False``: assemble ``Cap`` and let autograd differentiate everything (reference).
    """
    if analytic:
        return CapacitanceLogdetQuad.apply(blocks, corr_inv, u, "GLS capacitance")
    cap = assemble_capacitance(blocks, corr_inv)
    return spd_logdet_quad(cap, u, name="GLS capacitance", analytic=False)
