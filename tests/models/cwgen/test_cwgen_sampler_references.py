"""CW-Flow / CW-Diff samplers and generative losses against independent float64 references.

The network is replaced by a linear one, ``out = w x + cond + k history[:, -1]``, so that

* the flow ODE ``dx/dtau = w x + c`` has a closed-form Euler / Heun recursion
  (Euler: ``x <- a x + dt c`` with ``a = 1 + w dt``; Heun: ``a = 1 + w dt + (w dt)^2 / 2`` and
  ``x <- a x + dt (1 + w dt / 2) c``), so ``x_K = a^K x_0 + b (a^K - 1) / (a - 1)``;
* DDIM (spec-cwgen §5, Song et al. 2021) is re-implemented step by step in numpy;
* the flow-matching loss (spec §6: ``mean((x1 - x0 - v)^2)`` plus the FFT term with
  ``norm='forward'`` along time) and the DDPM loss (spec §5 Alg. 2) are recomputed in numpy.

Randomness: the references draw from identically seeded ``SampleNoise`` objects (or the
identically seeded global RNG) in the documented order, so they see the same numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from probforecast.models import CWDiff, CWFlow
from probforecast.models.cwgen.whitening import CholeskyWhitening
from probforecast.models.noise import SampleNoise
from tests.models.cwgen._helpers import make_batch

B, S, P, Q, N = 2, 3, 5, 4, 3
STANDARD = dict(target_dim=N, context_length=P, prediction_length=Q, prior="standard")


class LinearNet(nn.Module):
    """``w x + cond + k history[:, -1:]``; records every ``t`` it is called with."""

    def __init__(self, w: float, k: float):
        super().__init__()
        self.w, self.k = w, k
        self.ts: list[torch.Tensor] = []

    def condition(self, history, future_time_feat):
        return history.mean(1, keepdim=True)

    def forward(self, x, t, history, cond):
        self.ts.append(t.detach().clone())
        return self.w * x + cond + self.k * history[:, -1:, :]


def _prior(seed: int = 0, b: int = B):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, Q, N, generator=g, dtype=torch.float64)
    lower = torch.randn(b, Q, N, N, generator=g, dtype=torch.float64).tril(-1) * 0.3
    lower = lower + torch.diag_embed(torch.rand(b, Q, N, generator=g, dtype=torch.float64) + 0.5)
    history = torch.randn(b, P, N, generator=g, dtype=torch.float64)
    cond = torch.randn(b, 1, N, generator=g, dtype=torch.float64)
    return mu, lower, history, cond


def _offset(history, cond, k):
    """``c [B, S, 1, N]``: the linear net's constant term for each row (b, s)."""
    c = cond.numpy() + k * history[:, -1:, :].numpy()
    return np.repeat(c[:, None], S, axis=1)


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_flow_sampler_matches_the_closed_form_recursion(solver):
    w, k, steps = -0.7, 0.4, 4
    mu, lower, history, cond = _prior()
    model = CWFlow(**STANDARD, sampling_steps=steps, solver=solver)
    model.net = net = LinearNet(w, k)
    torch.manual_seed(123)  # the global RNG must not be the source
    out = model.generate(
        history, cond, CholeskyWhitening(mu, lower), S, SampleNoise.per_window([7, 8])
    )
    eps = SampleNoise.per_window([7, 8]).randn((B, S, Q, N), dtype=torch.float64).numpy()
    x0 = mu.numpy()[:, None] + np.einsum("bqij,bsqj->bsqi", lower.numpy(), eps)
    dt = 1.0 / steps
    if solver == "euler":
        a, b = 1 + w * dt, dt * _offset(history, cond, k)
    else:
        a, b = 1 + w * dt + (w * dt) ** 2 / 2, dt * (1 + w * dt / 2) * _offset(history, cond, k)
    expected = a**steps * x0 + b * (a**steps - 1) / (a - 1)
    assert out.shape == (B, S, Q, N) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    # the network sees time_scale * tau in x's dtype, one value per row
    taus = [i * dt for i in range(steps)]
    if solver == "heun":
        taus = [tau for i in range(steps) for tau in (i * dt, (i + 1) * dt)]
    assert len(net.ts) == len(taus)
    for t, tau in zip(net.ts, taus, strict=True):
        assert t.dtype == torch.float64 and t.shape == (B * S,)
        np.testing.assert_allclose(t.numpy(), 1000.0 * tau, rtol=1e-12)


def _ddim_reference(model, x_init, c, noise, w, eta, param):
    """Song et al. (2021) DDIM, written out in numpy on ``y [B*S, Q, N]``."""
    abar = model.alpha_bars.double().numpy()
    steps = model.timesteps
    y = x_init
    for i, step in enumerate(steps):
        a_t = abar[step]
        out = w * y + c
        if param == "x0":
            y0 = out
            eps = (y - np.sqrt(a_t) * y0) / np.sqrt(1 - a_t)
        else:
            eps = out
            y0 = (y - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        if i + 1 == len(steps):
            return y0
        a_n = abar[steps[i + 1]]
        sigma = eta * np.sqrt((1 - a_n) / (1 - a_t) * (1 - a_t / a_n))
        y = np.sqrt(a_n) * y0 + np.sqrt(max(1 - a_n - sigma**2, 0.0)) * eps
        if eta > 0:
            z = noise.randn((B, S, Q, N), dtype=torch.float64).flatten(0, 1).numpy()
            y = y + sigma * z
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("param", "eta"), [("x0", 0.0), ("x0", 0.5), ("eps", 1.0)])
def test_ddim_sampler_matches_a_numpy_reimplementation(param, eta):
    w, k = 0.3, -0.5
    mu, lower, history, cond = _prior(seed=1)
    model = CWDiff(
        **STANDARD, diffusion_steps=20, sampling_steps=5, parameterization=param, eta=eta
    )
    model.net = net = LinearNet(w, k)
    torch.manual_seed(321)  # the global RNG must not be the source
    out = model.generate(
        history, cond, CholeskyWhitening(mu, lower), S, SampleNoise.per_window([3, 4])
    )
    ref_noise = SampleNoise.per_window([3, 4])
    y_init = ref_noise.randn((B, S, Q, N), dtype=torch.float64).flatten(0, 1).numpy()
    c = _offset(history, cond, k).reshape(B * S, 1, N)
    y = _ddim_reference(model, y_init, c, ref_noise, w, eta, param).reshape(B, S, Q, N)
    expected = mu.numpy()[:, None] + np.einsum("bqij,bsqj->bsqi", lower.numpy(), y)
    assert out.shape == (B, S, Q, N) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    # the network sees the integer step as a float of y's dtype, one per row
    assert [t.dtype for t in net.ts] == [torch.float64] * len(model.timesteps)
    assert [set(t.tolist()) for t in net.ts] == [{float(s)} for s in model.timesteps]


class FixedSource:
    """A stand-in whitening whose ``sample(1)`` is a fixed ``z [B, 1, Q, N]``."""

    def __init__(self, z):
        self.z = z

    def sample(self, num_samples, noise=None):
        assert num_samples == 1
        return self.z


def _flow_batch(b, seed, observed=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, P + Q, N, generator=g, dtype=torch.float64)
    batch = make_batch(x[:, :P], x[:, P:], f=0)
    if observed is not None:
        batch = dataclasses.replace(batch, future_observed=observed)
    return batch


def _masks(b):
    all_obs = torch.ones(b, Q, N, dtype=torch.bool)
    partial = all_obs.clone()
    partial[0, 1:] = False
    partial[2, :, 0] = False
    single = torch.zeros(b, Q, N, dtype=torch.bool)
    single[1, 2, 1] = True
    return {"all": all_obs, "partial": partial, "single": single}


@pytest.mark.parametrize("mask", ["all", "partial", "single"])
@pytest.mark.parametrize("fft_weight", [0.0, 0.5, 2.0])
def test_flow_matching_loss_matches_numpy(fft_weight, mask):
    b, w, k = 3, 0.8, 0.25
    observed = _masks(b)[mask]
    batch = _flow_batch(b, seed=5, observed=observed)
    z = torch.randn(b, 1, Q, N, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    model = CWFlow(**STANDARD, fft_weight=fft_weight)
    model.net = net = LinearNet(w, k)
    cond = net.condition(batch.past_target, None)
    torch.manual_seed(11)
    loss = model.generative_loss(batch, FixedSource(z), cond)
    torch.manual_seed(11)
    tau = torch.rand(b, 1, 1, dtype=torch.float64).numpy()  # one tau ~ U(0, 1) per window
    x1, z0 = batch.future_target.numpy(), z[:, 0].numpy()
    hist = batch.past_target.numpy()
    x_tau = tau * x1 + (1 - tau) * z0
    v = w * x_tau + hist.mean(1, keepdims=True) + k * hist[:, -1:, :]
    target = x1 - z0
    m = observed.numpy().astype(float)
    expected = ((v - target) ** 2 * m).sum() / max(m.sum(), 1.0)
    fv, ft = np.fft.fft(v, axis=1) / Q, np.fft.fft(target, axis=1) / Q  # norm="forward"
    fft = ((fv.real - ft.real) ** 2).mean() + ((fv.imag - ft.imag) ** 2).mean()
    expected += fft_weight * fft
    assert loss.dtype == torch.float64
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    (t,) = net.ts
    assert t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), 1000.0 * tau.reshape(-1), rtol=1e-12)


@pytest.mark.parametrize("param", ["x0", "eps"])
def test_ddpm_loss_matches_numpy(param):
    b, w, k, steps = 4, 0.6, -0.3, 30
    mu, lower, _, _ = _prior(seed=2, b=b)
    observed = torch.ones(b, Q, N, dtype=torch.bool)
    observed[1, :2] = False
    batch = _flow_batch(b, seed=9, observed=observed)
    model = CWDiff(**STANDARD, diffusion_steps=steps, sampling_steps=5, parameterization=param)
    model.net = net = LinearNet(w, k)
    cond = net.condition(batch.past_target, None)
    torch.manual_seed(21)
    loss = model.generative_loss(batch, CholeskyWhitening(mu, lower), cond)
    torch.manual_seed(21)
    t = torch.randint(0, steps, (b,))  # t ~ U{0..T-1}
    noise = torch.randn(b, Q, N, dtype=torch.float64).numpy()
    y0 = np.linalg.solve(lower.numpy(), (batch.future_target - mu).numpy()[..., None])[..., 0]
    abar = model.alpha_bars.double().numpy()[t.numpy()].reshape(-1, 1, 1)
    y_t = np.sqrt(abar) * y0 + np.sqrt(1 - abar) * noise
    hist = batch.past_target.numpy()
    out = w * y_t + hist.mean(1, keepdims=True) + k * hist[:, -1:, :]
    target = y0 if param == "x0" else noise
    m = observed.numpy().astype(float)
    expected = ((out - target) ** 2 * m).sum() / m.sum()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    (t_seen,) = net.ts
    assert t_seen.dtype == torch.float64
    assert t_seen.tolist() == [float(s) for s in t.tolist()]


def test_ddpm_training_steps_cover_zero_to_t_minus_one():
    """``t ~ U{0..T-1}``: with T = 2 and 64 windows both 0 and 1 occur (miss prob 2^-63)."""
    b = 64
    model = CWDiff(**STANDARD, diffusion_steps=2, sampling_steps=2)
    model.net = net = LinearNet(0.5, 0.0)
    batch = _flow_batch(b, seed=1)
    mu = torch.zeros(b, Q, N, dtype=torch.float64)
    lower = torch.eye(N, dtype=torch.float64).expand(b, Q, N, N)
    torch.manual_seed(0)
    model.generative_loss(
        batch, CholeskyWhitening(mu, lower), net.condition(batch.past_target, None)
    )
    assert set(net.ts[0].tolist()) == {0.0, 1.0}
