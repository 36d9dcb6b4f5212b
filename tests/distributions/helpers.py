"""Dense float64 references for the GLS tests, built independently of the package helpers."""

from __future__ import annotations

import torch
from torch import Tensor


def random_params(batch, d, b, r, *, seed=0, dtype=torch.float64):
    """``loc, cov_factor, cov_diag, value`` with shapes ``batch + (D, B)`` / ``(D, B, R)``."""
    gen = torch.Generator().manual_seed(seed)
    loc = torch.randn(*batch, d, b, generator=gen, dtype=dtype)
    factor = torch.randn(*batch, d, b, r, generator=gen, dtype=dtype) / r**0.5
    diag = 0.2 + torch.rand(*batch, d, b, generator=gen, dtype=dtype)
    value = loc + torch.randn(*batch, d, b, generator=gen, dtype=dtype)
    return loc, factor, diag, value


def dense_sigma_one(factor: Tensor, diag: Tensor, corr: Tensor) -> Tensor:
    """One window: ``blkdiag(L_k) (C ⊗ I_R) blkdiag(L_k)^T + diag(vec d)`` with torch.block_diag/kron."""
    d, _, r = factor.shape
    a = torch.block_diag(*[factor[k] for k in range(d)])  # [DB, DR] time-major
    kron = torch.kron(corr, torch.eye(r, dtype=factor.dtype))
    return a @ kron @ a.T + torch.diag(diag.reshape(-1))


def dense_sigma(factor: Tensor, diag: Tensor, corr: Tensor) -> Tensor:
    """Batched :func:`dense_sigma_one` (loops over the broadcast batch): ``[..., DB, DB]``."""
    batch = torch.broadcast_shapes(factor.shape[:-3], diag.shape[:-2], corr.shape[:-2])
    d, b, r = factor.shape[-3:]
    f = factor.expand(*batch, d, b, r).reshape(-1, d, b, r)
    g = diag.expand(*batch, d, b).reshape(-1, d, b)
    c = corr.expand(*batch, d, d).reshape(-1, d, d)
    out = torch.stack([dense_sigma_one(f[i], g[i], c[i]) for i in range(f.shape[0])])
    return out.reshape(*batch, d * b, d * b)


def dense_log_prob(value, loc, factor, diag, corr) -> Tensor:
    """``MultivariateNormal(vec mu, Sigma).log_prob(vec z)``, time-major vec."""
    sigma = dense_sigma(factor, diag, corr)
    flat = value.flatten(-2)
    return torch.distributions.MultivariateNormal(
        loc.flatten(-2), covariance_matrix=sigma
    ).log_prob(flat)


def conditional_split(d, b, r, batch, seed):
    """``random_params`` split for the next-step conditional: the first ``D - 1`` steps'
    ``eta_obs [..., D-1, B]``, ``factor_obs [..., D-1, B, R]``, ``diag_obs [..., D-1, B]``, the
    last step's ``factor_next [..., B, R]`` and ``diag_next [..., B]``, then the full
    ``factor`` and ``diag``."""
    _, factor, diag, eta = random_params(batch, d, b, r, seed=seed)
    return (
        eta[..., :-1, :],
        factor[..., :-1, :, :],
        diag[..., :-1, :],
        factor[..., -1, :, :],
        diag[..., -1, :],
        factor,
        diag,
    )
