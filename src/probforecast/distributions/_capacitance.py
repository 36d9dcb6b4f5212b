"""``(log|K|, u^T K^{-1} u)`` of a batch of SPD matrices with an analytic backward.

Both GLS paths reduce the likelihood to these two numbers of one SPD matrix ``K``: the ``DR x DR``
capacitance with ``u = A^T E^{-1} eta`` (Woodbury), or the ``DB x DB`` covariance itself with
``u = eta``. Autograd through ``torch.linalg.cholesky`` (two full triangular solves, ``tril``
copies and a ``bmm`` per matrix) was most of a GPVar+GLS step; the closed form

    d log|K| / dK = K^{-1},   d (u^T K^{-1} u) / dK = -m m^T,   d (u^T K^{-1} u) / du = 2 m,

with ``m = K^{-1} u``, needs one ``cholesky_inverse`` of the factor already computed forward.

Gradient convention: ``K`` is treated as a general (not symmetry-constrained) matrix, exactly as
autograd through ``torch.linalg.cholesky`` does; both give the symmetric matrices above (checked
in float64 in ``tests/distributions/test_capacitance.py``). If :func:`safe_cholesky` adds a
jitter ``j`` to an element, ``K`` above is ``K + j I`` for it (the jitter is a constant), again
as with autograd. Only first derivatives are provided (``once_differentiable``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from probforecast.distributions._cholesky import safe_cholesky
from probforecast.distributions._gls_ops import solve_lower


class SPDLogdetQuad(torch.autograd.Function):
    """``(matrix [..., n, n], u [..., n]) -> (log|K| [...K], u^T K^{-1} u [...])``.

    ``...K`` is the batch shape of ``matrix``; the second output has the broadcast batch shape of
    both (a matrix may be shared by many vectors, e.g. sample dims in front of ``u``).
    """

    @staticmethod
    def forward(ctx, matrix: Tensor, u: Tensor, name: str):  # noqa: D102
        tril = safe_cholesky(matrix, name=name).tril  # float32 for half-precision input
        w = solve_lower(tril, u.to(tril.dtype))  # L^{-1} u, [..., n]
        logdet = 2 * tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        ctx.save_for_backward(tril, w)
        ctx.shapes = (matrix.shape, matrix.dtype, u.shape, u.dtype)
        return logdet, w.square().sum(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logdet: Tensor | None, grad_quad: Tensor | None):  # noqa: D102
        tril, w = ctx.saved_tensors
        matrix_shape, matrix_dtype, u_shape, u_dtype = ctx.shapes
        grad_matrix = grad_u = None
        if grad_quad is not None:
            m = solve_lower(tril, w, adjoint=True)  # K^{-1} u = L^{-T} L^{-1} u, [..., n]
        if ctx.needs_input_grad[0]:
            grad_matrix = torch.zeros((), dtype=tril.dtype, device=tril.device)
            if grad_logdet is not None:
                grad_matrix = grad_logdet[..., None, None] * torch.cholesky_inverse(tril)
            if grad_quad is not None:
                outer = (grad_quad[..., None] * m).unsqueeze(-1) * m.unsqueeze(-2)
                grad_matrix = grad_matrix - outer.sum_to_size(matrix_shape)
            grad_matrix = grad_matrix.expand(matrix_shape).to(matrix_dtype)
        if ctx.needs_input_grad[1] and grad_quad is not None:
            grad_u = (2 * grad_quad[..., None] * m).sum_to_size(u_shape).to(u_dtype)
        return grad_matrix, grad_u, None


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
    tril = safe_cholesky(matrix, name=name).tril
    logdet = 2 * tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return logdet, solve_lower(tril, u.to(tril.dtype)).square().sum(-1)
