"""The GLS likelihood terms from the dense ``DB x DB`` covariance (cheaper than Woodbury if ``B < R``).

``Sigma = A (C ⊗ I_R) A^T + diag(d)`` (time-major, see ``_gls_ops``) has entries

    Sigma[(i, b), (j, c)] = C[i, j] <F_(i, b), F_(j, c)> + delta_ij delta_bc d_i[b],

i.e. ``Sigma = (F F^T) ⊙ (C ⊗ 1_B 1_B^T) + diag(vec d)`` with ``F = cov_factor`` reshaped to
``[DB, R]`` (row ``(i, b)`` = ``L_i[b]``): one batched ``bmm`` and an elementwise product, no
Python loop. Its Cholesky factor gives ``log|Sigma|`` and ``eta^T Sigma^{-1} eta`` directly.

Missing entries (``mask`` False) are marginalised exactly by replacing their rows and columns of
``Sigma`` by those of the identity and their residual by 0. Proof: with a permutation ``P``
putting the observed coordinates ``o`` first, ``P Sigma' P^T = blkdiag(Sigma_oo, I)``, so
``|Sigma'| = |Sigma_oo|`` and ``Sigma'^{-1} = P^T blkdiag(Sigma_oo^{-1}, I) P``; with
``eta' = P^T (eta_o, 0)`` this gives ``eta'^T Sigma'^{-1} eta' = eta_o^T Sigma_oo^{-1} eta_o``.
These are the log-determinant and the Mahalanobis term of the marginal ``N(mu_o, Sigma_oo)``
(a Gaussian's marginal keeps the observed block of its covariance). ``Sigma'`` is built as
``Sigma`` with the rows of ``F`` and the ``d`` of missing entries replaced by 0 and 1, so ``d``
and ``value`` of missing entries are never read (they may be 0 or NaN).
"""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.distributions._capacitance import (
    add_grads,
    factorise,
    first_order,
    scaled,
    spd_logdet_quad,
    work_dtype,
)
from probforecast.distributions._cholesky import safe_cholesky
from probforecast.distributions._gls_ops import solve_lower


def effective_corr(corr: Tensor) -> Tensor:
    """``C`` as the capacitance path uses it: ``L_C L_C^T`` from :func:`safe_cholesky` where it had
    to jitter (``C + jitter I``), ``C`` itself elsewhere. Also raises :class:`GLSCholeskyError` for
    a ``C`` that no jitter makes positive definite, as the capacitance path does. ``[..., D, D]``."""
    result = safe_cholesky(corr, name="correlation matrix C")
    if not bool(result.jittered.any()):
        return corr
    product = result.tril @ result.tril.mT
    product = 0.5 * (product + product.mT)  # exactly symmetric, as CovarianceLogdetQuad assumes
    return torch.where(result.jittered[..., None, None], product, corr)


def block_indicator(d: int, b: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``E [DB, D]`` with ``E[(i, b), j] = delta_ij``: ``E^T X E`` sums the ``B x B`` blocks of ``X``."""
    return torch.eye(d, dtype=dtype, device=device).repeat_interleave(b, dim=0)


def kron_ones(corr: Tensor, b: int) -> Tensor:
    """``Cbig = C ⊗ 1_B 1_B^T``: ``[..., D, D] -> [..., DB, DB]`` (contiguous: products with it are
    several times faster than with a broadcast view)."""
    return corr.repeat_interleave(b, dim=-1).repeat_interleave(b, dim=-2)


def dense_covariance(factor: Tensor, corr_big: Tensor, diag: Tensor) -> Tensor:
    """``Sigma = (F F^T) ⊙ Cbig + diag(d)``: ``F [..., DB, R]``, ``Cbig [..., DB, DB]``
    (:func:`kron_ones`), ``d [..., DB]`` -> ``[..., DB, DB]`` (broadcast batch). Cost
    ``O((DB)^2 R)``; in-place on the fresh ``F F^T`` buffer (no autograd: used inside
    :class:`CovarianceLogdetQuad`)."""
    n = factor.shape[-2]
    batch = torch.broadcast_shapes(factor.shape[:-2], corr_big.shape[:-2], diag.shape[:-1])
    sigma = factor @ factor.mT
    if sigma.shape[:-2] == batch:
        sigma.mul_(corr_big)
    else:
        sigma = (sigma * corr_big).expand(*batch, n, n).clone()
    sigma.diagonal(dim1=-2, dim2=-1).add_(diag)
    return sigma


def masked_covariance(
    cov_factor: Tensor, cov_diag: Tensor, corr: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Dense time-major ``Sigma [..., DB, DB]`` with the rows and columns of missing entries set to
    those of the identity (plain autograd ops: the reference for :class:`CovarianceLogdetQuad`).

    ``cov_factor [..., D, B, R]``, ``cov_diag [..., D, B]``, ``corr [..., D, D]``, ``mask``
    ``[..., D, B]`` bool or None; the batch shape is the broadcast of all.
    """
    d, b, _ = cov_factor.shape[-3:]
    if mask is not None:
        cov_diag = torch.where(mask, cov_diag, torch.ones_like(cov_diag))
    flat = cov_factor.flatten(-3, -2)  # [..., DB, R]
    corr_big = corr[..., :, None, :, None].expand(*corr.shape[:-2], d, b, d, b)
    sigma = (flat @ flat.mT) * corr_big.reshape(*corr.shape[:-2], d * b, d * b)
    sigma = sigma + torch.diag_embed(cov_diag.flatten(-2))
    if mask is None:
        return sigma
    obs = mask.flatten(-2)
    eye = torch.eye(d * b, dtype=sigma.dtype, device=sigma.device)
    return torch.where(obs[..., :, None] & obs[..., None, :], sigma, eye)


class CovarianceLogdetQuad(torch.autograd.Function):
    """``(F [..., DB, R], C [..., D, D], d [..., DB], eta [..., DB]) -> (log|Sigma|, eta^T Sigma^{-1}
    eta)`` with ``Sigma = (F F^T) ⊙ (C ⊗ 1_B 1_B^T) + diag(d)``, analytic backward.

    With ``G = g1 S - g2 m m^T`` (``S = Sigma^{-1}``, ``m = S eta``, see ``SPDLogdetQuad``) the
    gradient w.r.t. ``Sigma``, autograd through :func:`dense_covariance` would give
    ``dF = (G ⊙ Cbig) F + (G ⊙ Cbig)^T F = 2 (G ⊙ Cbig) F`` (``G``, ``C`` symmetric;
    ``Cbig = C ⊗ 1_B 1_B^T``), ``dC[i, j] = sum_{b, c} (G ⊙ F F^T)[(i, b), (j, c)]``,
    ``dd = diag(G)``, ``deta = 2 g2 m``. ``G`` is never formed: the ``m m^T`` part collapses with
    ``Y[j, r] = sum_c m_(j, c) F[(j, c), r]`` (``[D, R]``), so

    - ``dF = 2 g1 (S ⊙ Cbig) F - 2 g2 m_(i, b) (C Y)[i, r]``;
    - ``dC = g1 E^T (S ⊙ F F^T) E - g2 Y Y^T``, ``E [DB, D]`` the block indicator
      (:func:`block_indicator`; two thin matmuls instead of a strided reduction);
    - ``dd = g1 diag(S) - g2 m^2``.

    Cost beyond ``cholesky_inverse``: two elementwise ``DB x DB`` products and ``O((DB)^2 R)``
    matmuls.
    """

    @staticmethod
    def forward(ctx, factor: Tensor, corr: Tensor, diag: Tensor, eta: Tensor, name: str):  # noqa: D102
        ctx.meta = [(t.shape, t.dtype) for t in (factor, corr, diag, eta)]
        dtype = work_dtype(factor.dtype)
        factor, corr = factor.to(dtype), corr.to(dtype)
        d = corr.shape[-1]
        corr_big = kron_ones(corr, factor.shape[-2] // d)
        sigma = dense_covariance(factor, corr_big, diag.to(dtype))
        tril, w, logdet, quad = factorise(sigma, eta, name)
        ctx.save_for_backward(tril, w, factor, corr, corr_big)
        return logdet, quad

    @staticmethod
    @first_order
    def backward(ctx, g_logdet: Tensor | None, g_quad: Tensor | None):  # noqa: D102
        tril, w, factor, corr, corr_big = ctx.saved_tensors
        d = corr.shape[-1]
        b = factor.shape[-2] // d
        terms: dict[str, list[Tensor | None]] = {"F": [], "C": [], "d": []}
        if g_logdet is not None:
            inv = torch.cholesky_inverse(tril)  # S [..., DB, DB], a fresh buffer
            terms["d"].append(scaled(g_logdet, inv.diagonal(dim1=-2, dim2=-1), 1))
            inv_low = factor @ factor.mT
            inv_low = inv_low.mul_(inv) if inv_low.shape == inv.shape else inv_low * inv
            ind = block_indicator(d, b, inv.dtype, inv.device)  # E [DB, D]
            terms["C"].append(scaled(g_logdet, ind.mT @ (inv_low @ ind), 2))
            inv_c = inv.mul_(corr_big)  # S ⊙ Cbig (inv is no longer needed)
            terms["F"].append(scaled(g_logdet, 2 * (inv_c @ factor), 2))
        m = None
        if g_quad is not None:
            m = solve_lower(tril, w, adjoint=True)  # S eta, [..., DB]
            m2 = m.unflatten(-1, (d, b))  # [..., D, B]
            y = (m2.unsqueeze(-1) * factor.unflatten(-2, (d, b))).sum(-2)  # [..., D, R]
            grad_f = -2 * m2.unsqueeze(-1) * (corr @ y).unsqueeze(-2)  # [..., D, B, R]
            terms["F"].append(scaled(g_quad, grad_f.flatten(-3, -2), 2))
            terms["C"].append(scaled(g_quad, -(y @ y.mT), 2))
            terms["d"].append(scaled(g_quad, -m.square(), 1))
        (f_shape, f_dtype), (c_shape, c_dtype), (d_shape, d_dtype), (e_shape, e_dtype) = ctx.meta
        grads: list[Tensor | None] = [None] * 5
        if ctx.needs_input_grad[0]:
            grads[0] = add_grads(*terms["F"], shape=f_shape, dtype=f_dtype)
        if ctx.needs_input_grad[1]:
            grads[1] = add_grads(*terms["C"], shape=c_shape, dtype=c_dtype)
        if ctx.needs_input_grad[2]:
            grads[2] = add_grads(*terms["d"], shape=d_shape, dtype=d_dtype)
        if ctx.needs_input_grad[3] and m is not None:
            grads[3] = add_grads(scaled(g_quad, 2 * m, 1), shape=e_shape, dtype=e_dtype)
        return tuple(grads)


def covariance_terms(
    eta: Tensor,
    cov_factor: Tensor,
    cov_diag: Tensor,
    corr: Tensor,
    mask: Tensor | None = None,
    *,
    analytic: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(log|Sigma_oo|, eta_o^T Sigma_oo^{-1} eta_o)`` via the ``DB x DB`` Cholesky factor.

    ``eta [..., D, B]`` must already be 0 on missing entries. Returns ``([...S], [...])``:
    the log-determinant has the batch shape of ``Sigma`` (``cov_factor``, ``cov_diag``, ``corr``,
    ``mask``), the Mahalanobis term the broadcast with ``eta``'s. ``analytic=False``: plain
    autograd through :func:`masked_covariance` and the Cholesky factorisation (reference).
    """
    corr = effective_corr(corr)
    if not analytic:
        sigma = masked_covariance(cov_factor, cov_diag, corr, mask)
        return spd_logdet_quad(sigma, eta.flatten(-2), name="GLS covariance", analytic=False)
    if mask is not None:
        cov_factor = torch.where(mask.unsqueeze(-1), cov_factor, torch.zeros_like(cov_factor))
        cov_diag = torch.where(mask, cov_diag, torch.ones_like(cov_diag))
    return CovarianceLogdetQuad.apply(
        cov_factor.flatten(-3, -2), corr, cov_diag.flatten(-2), eta.flatten(-2), "GLS covariance"
    )
