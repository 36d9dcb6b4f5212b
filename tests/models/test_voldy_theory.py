"""VolDy-VAE's theory (Appendix A): gradient scaling, robust profile, efficiency under regimes."""

from __future__ import annotations

import math

import pytest
import torch

from probforecast.models.voldy.likelihoods import elementwise_nll


def test_gradient_of_the_nll_wrt_mu_scales_as_one_over_sigma_squared():
    """Eq. 10/16: dJ/dmu = -(x - mu) / sigma^2, so doubling sigma divides it by 4."""
    x = torch.randn(50, dtype=torch.float64)
    mu = torch.randn(50, dtype=torch.float64, requires_grad=True)
    grads = []
    for sigma in (0.3, 0.6, 1.2):
        s = torch.full_like(x, sigma)
        (g,) = torch.autograd.grad(elementwise_nll("gaussian", x, mu, s).sum(), mu)
        torch.testing.assert_close(g, -(x - mu.detach()) / sigma**2)
        grads.append(g)
    torch.testing.assert_close(grads[0] / grads[1], torch.full_like(x, 4.0))
    torch.testing.assert_close(grads[0] / grads[2], torch.full_like(x, 16.0))


def test_gradient_wrt_sigma_and_the_robust_profile():
    """Eq. 18-19: dJ/dsigma = 1/sigma - r^2/sigma^3; sigma* = |r| and J(sigma*) = log|r| + 1/2."""
    r = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    sigma = torch.tensor([0.5, 0.7, 2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(
        elementwise_nll("gaussian", r, torch.zeros(3).double(), sigma).sum(), sigma
    )
    s = sigma.detach()
    torch.testing.assert_close(g, 1 / s - r**2 / s**3)
    grid = torch.linspace(0.01, 5, 200_001, dtype=torch.float64)
    for value in r:
        j = elementwise_nll("gaussian", value.expand_as(grid), torch.zeros_like(grid), grid)
        assert grid[j.argmin()].item() == pytest.approx(value.item(), abs=1e-4)
        assert j.min().item() == pytest.approx(math.log(value) + 0.5, abs=1e-8)


def test_nll_matches_torch_references():
    x, mu = torch.randn(40).double(), torch.randn(40).double()
    sigma = torch.rand(40).double() + 0.1
    gauss = torch.nn.GaussianNLLLoss(full=False, reduction="mean")(mu, x, sigma**2)
    torch.testing.assert_close(elementwise_nll("gaussian", x, mu, sigma).mean(), gauss)
    laplace = -torch.distributions.Laplace(mu, sigma).log_prob(x)
    torch.testing.assert_close(elementwise_nll("laplace", x, mu, sigma), laplace - math.log(2))
    df = torch.full_like(x, 4.5)
    student = -torch.distributions.StudentT(df, mu, sigma).log_prob(x)
    torch.testing.assert_close(elementwise_nll("student_t", x, mu, sigma, df), student)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        elementwise_nll("cauchy", x, mu, sigma)


def _fit(x: torch.Tensor, regime: torch.Tensor, objective: str, steps: int = 300) -> torch.Tensor:
    """Scalar location per replication ``x [R, T]`` by Adam: MSE, or the NLL with one learned
    log-scale per regime (``regime [T]`` in {0, 1}), the setting of Theorem A.1."""
    mu = x.mean(1).clone().requires_grad_(True)
    log_s = torch.zeros(x.shape[0], 2, dtype=x.dtype, requires_grad=True)
    params = [mu] if objective == "mse" else [mu, log_s]
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        if objective == "mse":
            loss = (x - mu[:, None]).square().mean()
        else:
            sigma = log_s.exp()[:, regime]
            loss = elementwise_nll("gaussian", x, mu[:, None].expand_as(x), sigma).mean()
        (loss * x.shape[0]).backward()
        opt.step()
    return mu.detach()


@pytest.mark.parametrize(("pi_low", "expected"), [(0.5, 25.5025), (0.8, 16.6816)])
def test_nll_location_estimate_is_more_efficient_than_mse_by_eq27(pi_low, expected):
    """Theorem A.1: x_t = mu* + eps_t, sigma in {0.1, 1.0} by regime blocks. Over R seeded
    replications Var(mu_MSE) / Var(mu_NLL) is near (pi_L s_L^2 + pi_H s_H^2)(pi_L/s_L^2 + pi_H/s_H^2)."""
    s_low, s_high = 0.1, 1.0
    closed = (pi_low * s_low**2 + (1 - pi_low) * s_high**2) * (
        pi_low / s_low**2 + (1 - pi_low) / s_high**2
    )
    assert closed == pytest.approx(expected, rel=1e-4)
    reps, blocks, block = 1500, 10, 10
    g = torch.Generator().manual_seed(0)
    n_low = round(pi_low * blocks)
    regime = torch.tensor([0] * n_low + [1] * (blocks - n_low)).repeat_interleave(block)
    sigma = torch.tensor([s_low, s_high], dtype=torch.float64)[regime]
    x = 0.7 + sigma * torch.randn(reps, blocks * block, generator=g, dtype=torch.float64)
    mu_mse, mu_nll = _fit(x, regime, "mse"), _fit(x, regime, "nll")
    torch.testing.assert_close(mu_mse, x.mean(1), rtol=0, atol=1e-4)
    wls = (x / sigma**2).sum(1) / (1 / sigma**2).sum()  # Eq. 25 with the true sigma (BLUE)
    assert torch.corrcoef(torch.stack([mu_nll, wls]))[0, 1] > 0.99
    ratio = (mu_mse.var() / mu_nll.var()).item()
    assert ratio == pytest.approx(closed, rel=0.15)
    assert mu_nll.mean().item() == pytest.approx(0.7, abs=0.01)  # unbiased
