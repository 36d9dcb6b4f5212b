"""Tests that pin the generator formulas (fidelity notes, CW-Gen item 8): each one fails when
a formula is replaced by a plausible wrong one.

* DDIM transport with the exact denoiser of Gaussian data reaches the data's mean and std
  (a sampler that re-noises with fresh noise loses variance);
* one DDIM step equals the update written out in float64;
* stub networks record their input: the diffusion network sees
  ``sqrt(abar_t) whiten(X) + sqrt(1 - abar_t) eps`` and is regressed onto ``whiten(X)`` (or
  ``eps``), the flow network sees ``tau X + (1 - tau) Z`` with ``Z = mu + A eps`` and is regressed
  onto ``X - Z``; the whitening reference is dense float64 algebra on the JMCE's own estimate;
* the flow sampler starts from the JMCE's ``N(mu, Sigma)``;
* in ``e2e`` the generative loss alone reaches the JMCE parameters.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from probforecast.models import JMCE, CWDiff, CWFlow
from probforecast.models.cwgen.jmce import JMCELoss
from probforecast.models.module import ForecastModule
from tests.models.cwgen._helpers import SMALL_JMCE, SMALL_NET, facts, random_batch, small_jmce

E2E = dict(training="e2e", whitening="cholesky", jmce=small_jmce(), **SMALL_NET)


class Stub(nn.Module):
    """Stands in for the network: records ``(x, t)`` of every call and returns ``fn(x, t)``;
    keeps ``condition`` of the real network."""

    def __init__(self, real: nn.Module, fn):
        super().__init__()
        self.real, self.fn = real, fn
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def condition(self, history, future_time_feat):
        return self.real.condition(history, future_time_feat)

    def forward(self, x, t, history, cond):
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return self.fn(x, t)


def two_stage_checkpoint(tmp_path) -> str:
    torch.manual_seed(3)
    jmce = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    path = tmp_path / "jmce.ckpt"
    torch.save({"state_dict": ForecastModule(jmce, num_samples=2).state_dict()}, path)
    return str(path)


def variant_kwargs(variant: str, tmp_path) -> dict:
    """``e2e`` (Cholesky, joint) or two-stage with ``symmetric`` / ``cholesky`` whitening."""
    if variant == "e2e":
        return E2E
    path = two_stage_checkpoint(tmp_path)
    return dict(whitening=variant, jmce=small_jmce(path), **SMALL_NET)


def reference_whiten(model, batch, x: torch.Tensor) -> torch.Tensor:
    """``A^{-1}(x - mu)`` in float64 from the model's JMCE estimate, written independently of
    ``whitening.py``: symmetric = ``V diag(max(lambda, lambda_min)^{-1/2}) V^T`` of ``Sigma``,
    cholesky = dense solve with the Cholesky factor of ``V diag(max(lambda, lambda_min)) V^T``
    (two-stage) or of ``Sigma`` itself (e2e, no floor)."""
    with torch.no_grad():
        mu, lower, cov = (v.double() for v in model.jmce.estimate(batch))
    centred = (x.double() - mu).unsqueeze(-1)
    lam, vec = torch.linalg.eigh(cov)
    if model.whitening == "symmetric":
        inv_half = vec @ torch.diag_embed(lam.clamp_min(model.lambda_min).rsqrt()) @ vec.mT
        return (inv_half @ centred).squeeze(-1)
    if model.training_mode == "two_stage":  # Cholesky factor of the same floored covariance
        lower = torch.linalg.cholesky(
            vec @ torch.diag_embed(lam.clamp_min(model.lambda_min)) @ vec.mT
        )
    return torch.linalg.solve(lower, centred).squeeze(-1)


class NoiseRecorder:
    """Wraps ``torch.<name>`` to keep every tensor it returns (the loss's own noise draws)."""

    def __init__(self, monkeypatch, name: str):
        self.draws: list[torch.Tensor] = []
        original = getattr(torch, name)

        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)
            self.draws.append(out.detach().clone())
            return out

        monkeypatch.setattr(torch, name, wrapped)


# ---------------------------------------------------------------------------------- diffusion
def gaussian_denoiser(alpha_bars: torch.Tensor, m: float, s2: float, param: str):
    """Exact ``E[y0 | y_t]`` (or ``E[eps | y_t]``) for data ``y0 ~ N(m, s2)`` i.i.d. per entry:
    ``y_t ~ N(sqrt(a) m, a s2 + 1 - a)``, ``E[y0|y_t] = m + sqrt(a) s2 (y_t - sqrt(a) m) /
    (a s2 + 1 - a)``."""

    def fn(y, t):
        a = alpha_bars[t.long()].double().reshape(-1, 1, 1)
        y64 = y.double()
        x0 = m + a.sqrt() * s2 * (y64 - a.sqrt() * m) / (a * s2 + 1 - a)
        out = x0 if param == "x0" else (y64 - a.sqrt() * x0) / (1 - a).sqrt()
        return out.to(y.dtype)

    return fn


def ddim_gaussian_law(alpha_bars: torch.Tensor, steps: list[int], m: float, s2: float):
    """Closed-form law of deterministic DDIM with the exact denoiser of ``N(m, s2)`` data, from
    ``y ~ N(0, 1)``. Every step is affine in ``y``: with ``v = a s2 + 1 - a``,
    ``y' - sqrt(a') m = c (y - sqrt(a) m)``, ``c = (sqrt(a' a) s2 + sqrt((1 - a')(1 - a))) / v``,
    and the last prediction is ``m + sqrt(a) s2 / v (y - sqrt(a) m)``. Returns (mean, std)."""
    a = alpha_bars.double()
    mean, std = 0.0, 1.0  # of y_{t_0} ~ N(0, 1)
    for t, t_next in zip(steps[:-1], steps[1:], strict=True):
        at, an = a[t], a[t_next]
        c = ((an * at).sqrt() * s2 + ((1 - an) * (1 - at)).sqrt()) / (at * s2 + 1 - at)
        mean, std = an.sqrt() * m + c * (mean - at.sqrt() * m), c * std
    a0 = a[steps[-1]]
    k = a0.sqrt() * s2 / (a0 * s2 + 1 - a0)
    return float(m + k * (mean - a0.sqrt() * m)), float(k * std)


@pytest.mark.parametrize("param", ["x0", "eps"])
def test_ddim_with_the_exact_gaussian_denoiser_reaches_the_data_law(param):
    """T = 1000 (abar_T = 4e-5, so the start N(0, I) is the forward process's end): 50
    deterministic DDIM steps with the exact denoiser of N(2, 0.5^2) data. The samples' mean and
    std equal the closed-form law of the DDIM recursion (``ddim_gaussian_law``: 2.000, 0.472;
    the 6 % std shortfall is the 50-step discretisation), which is near the data law."""
    m, s2 = 2.0, 0.25
    torch.manual_seed(0)
    model = CWDiff(
        **facts(), prior="standard", diffusion_steps=1000, sampling_steps=50,
        parameterization=param, **SMALL_NET,
    ).eval()  # fmt: skip
    model.net = Stub(model.net, gaussian_denoiser(model.alpha_bars, m, s2, param))
    out = model.sample(random_batch(b=2), 2000)  # [2, 2000, 8, 3]: 96k values
    mean, std = ddim_gaussian_law(model.alpha_bars, model.timesteps, m, s2)
    assert abs(mean - m) < 0.01 and abs(std - math.sqrt(s2)) < 0.04
    assert abs(out.mean().item() - mean) < 0.01  # MC standard error 0.0015
    assert abs(out.std().item() / std - 1) < 0.01
    # the network saw the DDIM grid, from T-1 down to 0
    steps = [int(t[0]) for _, t in model.net.calls]
    assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 50


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_one_ddim_step_equals_the_update_written_out(eta, monkeypatch):
    """Two DDIM steps ``t = 9 -> 0`` with a fixed nonlinear stub: the sample equals
    ``x0(y') `` with ``y' = sqrt(abar') x0(y) + sqrt(1 - abar' - sigma^2) eps_hat(y) + sigma z``,
    evaluated in float64 from the recorded start ``y`` and noise ``z``."""
    torch.manual_seed(0)
    model = CWDiff(
        **facts(), prior="standard", diffusion_steps=10, sampling_steps=2, eta=eta,
        beta_start=0.05, beta_end=0.3, **SMALL_NET,
    ).eval()  # fmt: skip
    assert model.timesteps == [9, 0]

    def fn(y, t):
        return torch.tanh(y) * 0.8 + 0.1

    model.net = Stub(model.net, fn)
    batch = random_batch(b=2)
    rec = NoiseRecorder(monkeypatch, "randn")
    out = model.sample(batch, 3)
    assert len(rec.draws) == (2 if eta > 0 else 1)
    y = rec.draws[0].double().flatten(0, 1)  # the start y_T ~ N(0, I), [B, S, Q, N] -> [B*S, ...]
    abar = model.alpha_bars.double()
    a, a2 = abar[9], abar[0]
    x0 = torch.tanh(y) * 0.8 + 0.1
    eps_hat = (y - a.sqrt() * x0) / (1 - a).sqrt()
    sigma = eta * ((1 - a2) / (1 - a) * (1 - a / a2)).sqrt()
    y2 = a2.sqrt() * x0 + (1 - a2 - sigma**2).sqrt() * eps_hat
    if eta > 0:
        y2 = y2 + sigma * rec.draws[-1].double().flatten(0, 1)
    assert torch.allclose(model.net.calls[1][0].double(), y2, atol=1e-5)
    expected = (torch.tanh(y2) * 0.8 + 0.1).reshape(2, 3, 8, 3)
    assert torch.allclose(out.double(), expected, atol=1e-5)


@pytest.mark.parametrize("variant", ["symmetric", "cholesky", "e2e"])
@pytest.mark.parametrize("param", ["x0", "eps"])
def test_diffusion_network_input_and_target(variant, param, tmp_path, monkeypatch):
    """Stub network: its input is ``sqrt(abar_t) y0 + sqrt(1 - abar_t) eps`` with
    ``y0 = whiten(X)`` (float64 reference on the JMCE's estimate) and the loss is
    ``mean((out - y0)^2)`` (x0) or ``mean((out - eps)^2)`` (eps)."""
    kw = variant_kwargs(variant, tmp_path)
    torch.manual_seed(0)
    model = CWDiff(**facts(), parameterization=param, **kw).eval()
    model.net = Stub(model.net, lambda x, t: 0.5 * x.flip(-1) - 0.3)
    model.jmce.loss_parts = lambda batch, estimate=None: JMCELoss(*[torch.zeros(())] * 5)
    batch = random_batch(b=4)
    rec = NoiseRecorder(monkeypatch, "randn_like")
    loss = model.loss(batch)
    scale = 0.5 if variant == "e2e" else 1.0  # e2e: (L_JMCE + L_gen) / 2 with L_JMCE = 0 here
    (x_t, t_in), eps = model.net.calls[0], rec.draws[0].double()
    t = t_in.long()
    assert torch.equal(t.to(t_in.dtype), t_in) and t.min() >= 0 and t.max() < 100
    y0 = reference_whiten(model, batch, batch.future_target)
    a = model.alpha_bars.double()[t].reshape(-1, 1, 1)
    assert y0.abs().max() > 0.5  # whitening is not near the identity here
    assert torch.allclose(x_t.double(), a.sqrt() * y0 + (1 - a).sqrt() * eps, atol=1e-4)
    out = 0.5 * x_t.double().flip(-1) - 0.3
    target = y0 if param == "x0" else eps
    assert torch.allclose(loss.double(), scale * (out - target).square().mean(), rtol=1e-4)


# ---------------------------------------------------------------------------------- flow
def reference_source(model, batch, eps: torch.Tensor) -> torch.Tensor:
    """``Z = mu + A eps`` in float64 from the JMCE estimate (``A`` = the whitening's factor)."""
    with torch.no_grad():
        mu, lower, cov = (v.double() for v in model.jmce.estimate(batch))
    lam, vec = torch.linalg.eigh(cov)
    if model.whitening == "symmetric":
        a = vec @ torch.diag_embed(lam.clamp_min(model.lambda_min).sqrt()) @ vec.mT
    elif model.training_mode == "two_stage":
        a = torch.linalg.cholesky(vec @ torch.diag_embed(lam.clamp_min(model.lambda_min)) @ vec.mT)
    else:
        a = lower
    return mu + (a @ eps.double().unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("variant", ["symmetric", "cholesky", "e2e"])
def test_flow_network_input_and_target(variant, tmp_path, monkeypatch):
    """Stub network: its input is ``tau X + (1 - tau) Z`` with ``Z = mu + A eps`` from the JMCE,
    its time input ``1000 tau``, and the loss ``mean((out - (X - Z))^2)``."""
    kw = variant_kwargs(variant, tmp_path)
    torch.manual_seed(0)
    model = CWFlow(**facts(), **kw).eval()
    model.net = Stub(model.net, lambda x, t: 0.5 * x.flip(-1) - 0.3)
    model.jmce.loss_parts = lambda batch, estimate=None: JMCELoss(*[torch.zeros(())] * 5)
    batch = random_batch(b=4)
    rec = NoiseRecorder(monkeypatch, "randn")
    loss = model.loss(batch)
    scale = 0.5 if variant == "e2e" else 1.0
    (x_tau, t_in) = model.net.calls[0]
    tau = (t_in.double() / 1000.0).reshape(-1, 1, 1)
    assert ((tau > 0) & (tau < 1)).all()
    eps = [d for d in rec.draws if d.shape[-2:] == batch.future_target.shape[-2:]]
    assert len(eps) == 1, "the source noise must be one N(0, I) draw of the target's shape"
    z = reference_source(model, batch, eps[0].reshape(batch.future_target.shape))
    x1 = batch.future_target.double()
    assert (z - x1).abs().max() > 0.5  # the source differs from the data
    assert torch.allclose(x_tau.double(), tau * x1 + (1 - tau) * z, atol=1e-4)
    out = 0.5 * x_tau.double().flip(-1) - 0.3
    assert torch.allclose(loss.double(), scale * (out - (x1 - z)).square().mean(), rtol=1e-4)


@pytest.mark.parametrize("variant", ["symmetric", "e2e"])
def test_flow_sampler_starts_from_the_jmce_source(variant, tmp_path):
    """Zero velocity: the samples are the source draws, so their mean and covariance per window
    and step are the JMCE's ``mu`` and ``Sigma`` (Monte Carlo, 6000 draws)."""
    kw = variant_kwargs(variant, tmp_path)
    torch.manual_seed(0)
    model = CWFlow(**facts(), sampling_steps=3, **kw).eval()
    model.net = Stub(model.net, lambda x, t: torch.zeros_like(x))
    batch = random_batch(b=2)
    s = model.sample(batch, 6000).double()  # [B, S, Q, N]
    with torch.no_grad():
        mu, _, cov = (v.double() for v in model.jmce.estimate(batch))
    if variant == "symmetric":
        lam, vec = torch.linalg.eigh(cov)
        cov = vec @ torch.diag_embed(lam.clamp_min(model.lambda_min)) @ vec.mT
    sd = cov.diagonal(dim1=-2, dim2=-1).sqrt()
    assert ((s.mean(1) - mu).abs() / sd).max() < 0.1
    c = s - s.mean(1, keepdim=True)
    emp = torch.einsum("bsqi,bsqj->bqij", c, c) / s.shape[1]
    assert ((emp - cov).abs() / (sd.unsqueeze(-1) * sd.unsqueeze(-2))).max() < 0.1
    assert mu.abs().max() > 0.3  # a source N(0, I) would fail the mean check


# ---------------------------------------------------------------------------------- e2e
@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_e2e_generative_loss_alone_reaches_the_jmce(cls):
    """With ``L_JMCE`` replaced by 0, ``loss = L_gen / 2`` still has a nonzero gradient on the
    JMCE's mean/covariance head and on every parameter that feeds it."""
    torch.manual_seed(0)
    model = cls(**facts(), **E2E)
    model.jmce.loss_parts = lambda batch, estimate=None: JMCELoss(*[torch.zeros(())] * 5)
    model.loss(random_batch()).backward()
    grads = {n: p.grad for n, p in model.jmce.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [
        n for n, g in grads.items() if g is None or g.abs().sum() == 0
    ]
