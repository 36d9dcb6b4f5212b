"""The GLS likelihood terms from the dense ``DB x DB`` covariance (cheaper than Woodbury if ``B < R``).

``Sigma = A (C ⊗ I_R) A^T + diag(d)`` (time-major, see ``_gls_ops``) has entries

    Sigma[(i, b), (j, c)] = C[i, j] <L_i[b], L_j[c]> + delta_ij delta_bc d_i[b],

i.e. ``Sigma = (F F^T) ⊙ (C ⊗ 1_B 1_B^T) + diag(vec d)`` with ``F = cov_factor`` reshaped to
``[DB, R]``: one batched ``bmm`` and an elementwise product, no Python loop. Its Cholesky factor
gives ``log|Sigma|`` and ``eta^T Sigma^{-1} eta`` directly (:func:`spd_logdet_quad`).

Missing entries (``mask`` False) are marginalised exactly by replacing their rows and columns of
``Sigma`` by those of the identity and their residual by 0. Proof: with a permutation ``P``
putting the observed coordinates ``o`` first, ``P Sigma' P^T = blkdiag(Sigma_oo, I)``, so
``|Sigma'| = |Sigma_oo|`` and ``Sigma'^{-1} = P^T blkdiag(Sigma_oo^{-1}, I) P``; with
``eta' = P^T (eta_o, 0)`` this gives ``eta'^T Sigma'^{-1} eta' = eta_o^T Sigma_oo^{-1} eta_o``.
These are the log-determinant and the Mahalanobis term of the marginal ``N(mu_o, Sigma_oo)``
(the marginal of a Gaussian keeps the observed block of its covariance). The identity rows never
read ``d`` or ``value`` of missing entries, so these may be 0 or NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.distributions._capacitance import spd_logdet_quad
from probforecast.distributions._cholesky import safe_cholesky


def effective_corr(corr: Tensor) -> Tensor:
    """``C`` as the capacitance path uses it: ``L_C L_C^T`` from :func:`safe_cholesky` where it had
    to jitter (``C + jitter I``), ``C`` itself elsewhere. Also raises :class:`GLSCholeskyError` for
    a ``C`` that no jitter makes positive definite, as the capacitance path does. ``[..., D, D]``."""
    result = safe_cholesky(corr, name="correlation matrix C")
    if not bool(result.jittered.any()):
        return corr
    return torch.where(result.jittered[..., None, None], result.tril @ result.tril.mT, corr)


def masked_covariance(
    cov_factor: Tensor, cov_diag: Tensor, corr: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Dense time-major ``Sigma [..., DB, DB]``; rows/columns of missing entries set to the identity.

    ``cov_factor [..., D, B, R]``, ``cov_diag [..., D, B]``, ``corr [..., D, D]``, ``mask``
    ``[..., D, B]`` bool or None; the batch shape is the broadcast of all. Cost ``O((DB)^2 R)``.
    """
    d, b, _ = cov_factor.shape[-3:]
    flat = cov_factor.flatten(-3, -2)  # [..., DB, R], row (i, b) = L_i[b]
    corr_big = corr[..., :, None, :, None].expand(*corr.shape[:-2], d, b, d, b)
    sigma = (flat @ flat.mT) * corr_big.reshape(*corr.shape[:-2], d * b, d * b)
    if mask is not None:
        cov_diag = torch.where(mask, cov_diag, torch.ones_like(cov_diag))
    sigma = sigma + torch.diag_embed(cov_diag.flatten(-2))
    if mask is None:
        return sigma
    obs = mask.flatten(-2)
    eye = torch.eye(d * b, dtype=sigma.dtype, device=sigma.device)
    return torch.where(obs[..., :, None] & obs[..., None, :], sigma, eye)


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
    ``mask``), the Mahalanobis term the broadcast with ``eta``'s.
    """
    sigma = masked_covariance(cov_factor, cov_diag, effective_corr(corr), mask)
    return spd_logdet_quad(sigma, eta.flatten(-2), name="GLS covariance", analytic=analytic)
