"""Theorem 1 of CW-Gen numerically (spec §2.3, test idea §17.7): whenever
lambda_min(Sigma_hat)^-1 (||dmu||^2 + ||dSigma||_N) + sqrt(d) ||dSigma||_F <= ||mu||^2,
KL(N(mu, Sigma) || N(mu_hat, Sigma_hat)) <= KL(N(mu, Sigma) || N(0, I)).

The left side is measured where the generator works: in the project's whitened coordinates.
With ``W = A^{-1}`` of the prior ``N(mu_hat, A A^T)``, the data law becomes
``N(W(mu - mu_hat), W Sigma W^T)`` and KL is invariant under the affine map, so
``KL(whitened data law || N(0, I))`` computed through ``whiten`` must equal the closed form
KL (float64) and satisfy the theorem."""

from __future__ import annotations

import math

import pytest
import torch

from probforecast.models.cwgen import CholeskyWhitening, IdentityWhitening, SymmetricWhitening


def gaussian_kl(mu0, s0, mu1, s1):
    """Closed-form KL(N(mu0, s0) || N(mu1, s1)), float64, batched over the leading axis."""
    d = mu0.shape[-1]
    s1_inv = torch.linalg.inv(s1)
    diff = (mu1 - mu0).unsqueeze(-1)
    trace = (s1_inv @ s0).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff.transpose(-1, -2) @ s1_inv @ diff).flatten()
    return 0.5 * (trace + maha - d + torch.logdet(s1) - torch.logdet(s0))


def whitened_kl_to_standard(whitening, mu, chol_sigma):
    """``KL(N(m, C) || N(0, I))`` with ``m = whiten(mu)`` and ``C = G G^T``, ``G``'s columns
    ``whiten(mu_hat + L_Sigma e_j) - whiten(mu_hat)`` (``[M, d]``, ``[M, d, d]``)."""
    m_, d = mu.shape
    mean = whitening.whiten(mu[:, None])[:, 0]  # [M, d]
    base = whitening.mu  # [M, 1, d]
    cols = base.unsqueeze(1) + chol_sigma.mT.unsqueeze(2)  # [M, d (column j), 1, d]
    g = (whitening.whiten(cols) - whitening.whiten(base.unsqueeze(1)))[:, :, 0].mT  # [M, d, d]
    cov = g @ g.mT
    trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    return 0.5 * (trace + mean.square().sum(-1) - d - torch.logdet(cov))


@pytest.mark.parametrize("kind", ["symmetric", "cholesky"])
def test_theorem_1_has_no_counterexample_in_a_random_search(kind):
    g = torch.Generator().manual_seed(0)
    m, d = 4000, 4
    a = torch.randn(m, d, d, generator=g, dtype=torch.float64)
    sigma = a @ a.transpose(-1, -2) / d + 0.3 * torch.eye(d, dtype=torch.float64)
    mu = 3 * torch.randn(m, d, generator=g, dtype=torch.float64)
    scale = torch.rand(m, 1, generator=g, dtype=torch.float64)  # estimation errors of all sizes
    mu_hat = mu + scale * torch.randn(m, d, generator=g, dtype=torch.float64)
    e = torch.randn(m, d, d, generator=g, dtype=torch.float64)
    sigma_hat = sigma + 0.2 * scale.unsqueeze(-1) * (e + e.transpose(-1, -2))
    lam_min = torch.linalg.eigvalsh(sigma_hat)[:, 0]
    keep = lam_min > 1e-3  # Sigma_hat positive definite
    mu, sigma, mu_hat, sigma_hat, lam_min = (
        v[keep] for v in (mu, sigma, mu_hat, sigma_hat, lam_min)
    )
    m = mu.shape[0]
    d_sigma = sigma_hat - sigma
    lhs = (
        (mu_hat - mu).square().sum(-1) + torch.linalg.svdvals(d_sigma).sum(-1)
    ) / lam_min + math.sqrt(d) * torch.linalg.matrix_norm(d_sigma)
    holds = lhs <= mu.square().sum(-1)
    eye = torch.eye(d, dtype=torch.float64).expand(m, d, d)
    chol = torch.linalg.cholesky(sigma)
    if kind == "symmetric":  # clamp below every lambda_min(Sigma_hat): no flooring happens
        cw = SymmetricWhitening(mu_hat[:, None], sigma_hat[:, None], eps=1e-4)
    else:
        cw = CholeskyWhitening(mu_hat[:, None], torch.linalg.cholesky(sigma_hat)[:, None])
    kl_hat = whitened_kl_to_standard(cw, mu, chol)
    kl_std = whitened_kl_to_standard(IdentityWhitening(mu[:, None]), mu, chol)
    # the whitened-space KL is the KL to the prior (float64 closed form)
    assert torch.allclose(kl_hat, gaussian_kl(mu, sigma, mu_hat, sigma_hat), rtol=1e-8)
    assert torch.allclose(kl_std, gaussian_kl(mu, sigma, torch.zeros_like(mu), eye), rtol=1e-8)
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mu[:50], sigma[:50]),
        torch.distributions.MultivariateNormal(mu_hat[:50], eye[:50]),
    )
    assert torch.allclose(gaussian_kl(mu[:50], sigma[:50], mu_hat[:50], eye[:50]), ref)
    assert holds.sum() > 500  # the condition is met often enough to make the check meaningful
    assert (kl_hat[holds] <= kl_std[holds] + 1e-12).all()
    # and the condition matters: without it the CW prior can be worse
    assert (kl_hat[~holds] > kl_std[~holds]).any()
