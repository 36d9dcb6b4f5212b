"""Whitening: round trips, identity covariance on Gaussian data with known mu/Sigma, clamping."""

from __future__ import annotations

import pytest
import torch

from probforecast.models.cwgen import CholeskyWhitening, IdentityWhitening, SymmetricWhitening


def random_prior(b=3, q=4, n=5, seed=0, min_eig=0.5):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, q, n, n, generator=g, dtype=torch.float64)
    sigma = a @ a.transpose(-1, -2) / n + min_eig * torch.eye(n, dtype=torch.float64)
    mu = 3 * torch.randn(b, q, n, generator=g, dtype=torch.float64)
    return mu, sigma


def both(mu, sigma, eps=1e-3):
    return {
        "symmetric": SymmetricWhitening(mu, sigma, eps=eps),
        "cholesky": CholeskyWhitening(mu, torch.linalg.cholesky(sigma)),
    }


@pytest.mark.parametrize("kind", ["symmetric", "cholesky"])
def test_round_trip_with_and_without_sample_axis(kind):
    mu, sigma = random_prior()
    w = both(mu, sigma)[kind]
    x = torch.randn(3, 7, 4, 5, dtype=torch.float64)
    assert torch.allclose(w.unwhiten(w.whiten(x)), x, atol=1e-10)
    assert torch.allclose(w.whiten(w.unwhiten(x)), x, atol=1e-10)
    x3 = x[:, 0]
    assert torch.allclose(w.unwhiten(w.whiten(x3)), x3, atol=1e-10)
    assert torch.allclose(w.covariance, sigma, atol=1e-10)


def test_factors_match_dense_references():
    mu, sigma = random_prior(seed=1)
    sym = SymmetricWhitening(mu, sigma, eps=1e-3)
    # Sigma^{1/2} is symmetric and squares to Sigma; Sigma^{-1/2} is its inverse
    assert torch.allclose(sym.factor, sym.factor.transpose(-1, -2), atol=1e-12)
    assert torch.allclose(sym.factor @ sym.factor, sigma, atol=1e-10)
    eye = torch.eye(5, dtype=torch.float64)
    assert torch.allclose(sym.inv_half @ sym.factor, eye.expand_as(sigma), atol=1e-10)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    chol = CholeskyWhitening(mu, torch.linalg.cholesky(sigma))
    dense = torch.linalg.solve(torch.linalg.cholesky(sigma), (x - mu).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(chol.whiten(x), dense, atol=1e-10)
    # factor-invariant: ||x_cw||^2 is the Mahalanobis distance for both factorizations
    maha = ((x - mu).unsqueeze(-2) @ torch.linalg.solve(sigma, (x - mu).unsqueeze(-1))).flatten()
    for w in (sym, chol):
        assert torch.allclose(w.whiten(x).square().sum(-1).flatten(), maha, atol=1e-9)


@pytest.mark.parametrize("kind", ["symmetric", "cholesky"])
def test_whitening_gaussian_data_gives_zero_mean_identity_covariance(kind):
    mu, sigma = random_prior(b=2, q=2, n=4, seed=2)
    lower = torch.linalg.cholesky(sigma)
    g = torch.Generator().manual_seed(3)
    s = 40_000
    eps = torch.randn(2, s, 2, 4, generator=g, dtype=torch.float64)
    x = mu.unsqueeze(1) + (lower.unsqueeze(1) @ eps.unsqueeze(-1)).squeeze(-1)
    y = both(mu, sigma)[kind].whiten(x)  # [B, S, Q, N]
    mean = y.mean(1)
    centred = y - mean.unsqueeze(1)
    cov = torch.einsum("bsqi,bsqj->bqij", centred, centred) / s
    assert mean.abs().max() < 0.03
    assert (cov - torch.eye(4, dtype=torch.float64)).abs().max() < 0.04
    # sampling through the factor reproduces Sigma
    draws = both(mu, sigma)[kind].sample(s, generator=g)
    c = draws - draws.mean(1, keepdim=True)
    emp = torch.einsum("bsqi,bsqj->bqij", c, c) / s
    assert ((emp - sigma).abs() / sigma.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)).max() < 0.05


def test_symmetric_clamping_is_consistent_in_both_directions():
    vec = torch.linalg.qr(torch.randn(1, 1, 3, 3, dtype=torch.float64))[0]
    lam = torch.tensor([1e-4, 0.5, 2.0], dtype=torch.float64)
    sigma = vec @ torch.diag_embed(lam) @ vec.transpose(-1, -2)
    mu = torch.zeros(1, 1, 3, dtype=torch.float64)
    w = SymmetricWhitening(mu, sigma, eps=0.1)
    clamped = vec @ torch.diag_embed(lam.clamp_min(0.1)) @ vec.transpose(-1, -2)
    assert torch.allclose(w.covariance, clamped, atol=1e-12)
    x = torch.randn(1, 5, 1, 3, dtype=torch.float64)
    assert torch.allclose(w.unwhiten(w.whiten(x)), x, atol=1e-12)
    assert torch.allclose(w.eigenvalues.min(), torch.tensor(0.1, dtype=torch.float64))


def test_identity_whitening_and_bad_shapes():
    like = torch.randn(2, 3, 4)
    w = IdentityWhitening(like)
    x = torch.randn(2, 5, 3, 4)
    assert torch.equal(w.whiten(x), x) and torch.equal(w.unwhiten(x), x)
    assert w.sample(6).shape == (2, 6, 3, 4)
    mu, sigma = random_prior()
    with pytest.raises(ValueError, match=r"\[B, \.\.\., Q, N\]"):
        both(mu, sigma)["cholesky"].whiten(torch.randn(3, 4, 6))
    with pytest.raises(ValueError, match="factor"):
        CholeskyWhitening(mu, sigma[..., :2])
    with pytest.raises(ValueError, match="eps"):
        SymmetricWhitening(mu, sigma, eps=0.0)
