"""Whitening: round trips, identity covariance on Gaussian data with known mu/Sigma, clamping."""

from __future__ import annotations

import pytest
import torch

from probforecast.models.cwgen import CholeskyWhitening, IdentityWhitening, SymmetricWhitening
from probforecast.models.cwgen.whitening import floored_cholesky
from probforecast.models.noise import SampleNoise


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
    draws = both(mu, sigma)[kind].sample(s, SampleNoise.per_window([5, 6]))
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


def test_floored_cholesky_uses_the_symmetric_paths_floor():
    """``floored_cholesky`` factors ``V diag(max(lambda, eps)) V^T`` (float64 reference), the
    covariance ``SymmetricWhitening`` uses; matrices above the floor keep their own Cholesky."""
    g = torch.Generator().manual_seed(4)
    vec = torch.linalg.qr(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64))[0]
    lam = torch.rand(2, 3, 4, generator=g, dtype=torch.float64) * 2 + 0.2
    lam[0, 1, 0], lam[1, 2, :2] = 1e-3, torch.tensor([0.01, 0.05])  # below the floor
    lam[1, 0, 3] = -0.02  # indefinite
    sigma = vec @ torch.diag_embed(lam) @ vec.mT
    floored = vec @ torch.diag_embed(lam.clamp_min(0.1)) @ vec.mT
    lower = floored_cholesky(sigma, 0.1)
    assert torch.equal(lower, lower.tril())
    assert torch.allclose(lower @ lower.mT, floored, atol=1e-12)
    sym = SymmetricWhitening(torch.zeros(2, 3, 4, dtype=torch.float64), sigma, eps=0.1)
    assert torch.allclose(sym.covariance, lower @ lower.mT, atol=1e-12)
    above = lam.min(-1).values > 0.1
    assert torch.allclose(lower[above], torch.linalg.cholesky(sigma[above]), atol=1e-12)
    # float32 input keeps float32
    assert floored_cholesky(sigma.float(), 0.1).dtype == torch.float32


@pytest.mark.parametrize("kind", ["symmetric", "cholesky"])
@pytest.mark.parametrize("prior_dtype", [torch.float32, torch.bfloat16])
def test_bf16_autocast_keeps_the_whitening_in_float32(kind, prior_dtype):
    """Under bf16 autocast (a JMCE under autocast returns bf16 mu / Sigma), whitening equals the
    float64 reference on the same (rounded) prior to 1e-4 and round trips to 1e-4; with the
    factor products in bf16 the round-trip error was ~0.03 (fidelity note 6)."""
    mu64, sigma64 = random_prior(b=4, q=16, n=7, seed=5)
    mu, sigma = mu64.to(prior_dtype), sigma64.to(prior_dtype)
    x = (mu64 + torch.randn(4, 16, 7, dtype=torch.float64)).float()
    ref_mu, ref_sigma = mu.double(), sigma.double()
    chol = torch.linalg.cholesky(ref_sigma).to(prior_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = (
            SymmetricWhitening(mu, sigma, eps=1e-3)
            if kind == "symmetric"
            else CholeskyWhitening(mu, chol)
        )
        y = w.whiten(x)
        back = w.unwhiten(y)
    assert y.dtype == torch.float32 and back.dtype == torch.float32
    assert (back - x).abs().max() < 1e-4
    if kind == "symmetric":
        lam, vec = torch.linalg.eigh(0.5 * (ref_sigma + ref_sigma.mT))
        inv = vec @ torch.diag_embed(lam.clamp_min(1e-3).rsqrt()) @ vec.mT
    else:
        inv = torch.linalg.inv(chol.double())
    ref = (inv @ (x.double() - ref_mu).unsqueeze(-1)).squeeze(-1)
    assert (y.double() - ref).abs().max() < 1e-4 * ref.abs().max()
