"""CW-Diff / CW-Flow: samplers against oracle networks, window alignment, e2e gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import CWDiff, CWFlow
from probforecast.models.cwgen.diffusion import ddim_timesteps, linear_alpha_bars
from probforecast.models.cwgen.whitening import CholeskyWhitening
from tests.models.cwgen._helpers import SMALL_NET, facts, random_batch, small_jmce

E2E = dict(training="e2e", whitening="cholesky", jmce=small_jmce(), **SMALL_NET)


class Oracle(nn.Module):
    """Stands in for the network: ``fn(x, t)``; keeps ``condition`` of the real one."""

    def __init__(self, real: nn.Module, fn):
        super().__init__()
        self.real, self.fn = real, fn

    def condition(self, history, future_time_feat):
        return self.real.condition(history, future_time_feat)

    def forward(self, x, t, history, cond):
        return self.fn(x, t)


def test_schedule_and_timesteps():
    abar = linear_alpha_bars(100, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 100, dtype=torch.float64)
    assert torch.allclose(abar[10], torch.prod(1 - betas[:11]))
    assert ddim_timesteps(100, 50)[0] == 99 and ddim_timesteps(100, 50)[-1] == 0
    assert len(ddim_timesteps(100, 50)) == 50 and ddim_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(ValueError, match="sampling_steps"):
        ddim_timesteps(10, 11)


@pytest.mark.parametrize(("param", "eta"), [("x0", 0.0), ("x0", 0.5), ("eps", 0.0), ("eps", 1.0)])
def test_ddim_with_an_oracle_returns_the_point_mass_unwhitened(param, eta):
    """Whitened data = the constant c: the exact x0 (or eps) predictor makes DDIM return c, and
    the sample is un-whitened with the JMCE's own factor: L c + mu."""
    torch.manual_seed(0)
    model = CWDiff(**facts(), parameterization=param, eta=eta, sampling_steps=7, **E2E).eval()
    c = torch.linspace(-1, 1, 3)
    abar = model.alpha_bars

    def oracle(y, t):
        if param == "x0":
            return c.expand_as(y)
        a = abar[t.long()].reshape(-1, 1, 1)
        return (y - a.sqrt() * c) / (1 - a).sqrt()

    model.net = Oracle(model.net, oracle)
    batch = random_batch(b=2)
    samples = model.sample(batch, 5)
    mu, lower, _ = model.jmce.estimate(batch)
    expected = CholeskyWhitening(mu, lower).unwhiten(c.expand(2, 5, 8, 3))
    assert torch.allclose(samples, expected, atol=1e-4)


def test_flow_with_the_exact_gaussian_velocity_transports_source_to_data():
    """Source N(0, 1), data N(m, s^2): the marginal velocity is linear in x (closed form); Heun
    reaches the data law, and is closer than Euler with the same number of steps."""
    m, s2 = 2.0, 0.25

    def velocity(x, t_scaled):
        tau = (t_scaled / 1000.0).reshape(-1, 1, 1)
        var = tau**2 * s2 + (1 - tau) ** 2
        return m + (tau * s2 - (1 - tau)) / var * (x - tau * m)

    stats = {}
    for solver in ("euler", "heun"):
        torch.manual_seed(0)
        model = CWFlow(**facts(), prior="standard", solver=solver, sampling_steps=8, **SMALL_NET)
        model.net = Oracle(model.net, velocity)
        out = model.sample(random_batch(b=2), 4000)
        stats[solver] = (out.mean().item(), out.std().item())
    assert abs(stats["heun"][0] - m) < 0.02 and abs(stats["heun"][1] - s2**0.5) < 0.02
    assert abs(stats["heun"][1] - 0.5) < abs(stats["euler"][1] - 0.5)


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_e2e_gradients_reach_the_jmce_and_the_raw_prior_has_none(cls):
    torch.manual_seed(0)
    model = cls(**facts(), **E2E)
    model.loss(random_batch()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.jmce.parameters())
    raw = cls(**facts(), prior="standard", **SMALL_NET)
    assert raw.jmce is None and not any("jmce" in n for n, _ in raw.named_parameters())


def test_e2e_loss_is_the_mean_of_jmce_and_generative_losses():
    torch.manual_seed(0)
    model = CWDiff(**facts(), **E2E)
    batch = random_batch()
    torch.manual_seed(5)
    total = model.loss(batch)
    torch.manual_seed(5)
    whitening, jmce_part = model.prior_whitening(batch)
    gen = model.generative_loss(
        batch, whitening, model.net.condition(batch.past_target, batch.future_time_feat)
    )
    assert torch.allclose(total, 0.5 * (jmce_part + gen))
    assert torch.allclose(jmce_part, model.jmce.loss(batch))


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_every_training_tuple_comes_from_one_window(cls, monkeypatch):
    """Guards against spec §15.5 (cached whitened batches paired with a re-shuffled loader): in
    every training step, row b's history, target and prior (mu, Sigma) all belong to window b."""
    dm = ForecastDataModule(
        "synthetic",
        context_length=16,
        prediction_length=8,
        batch_size=5,
        num_batches_per_epoch=3,
        synthetic=SyntheticOptions(num_series=3, length=300, num_test_windows=2),
    )
    dm.setup("fit")
    torch.manual_seed(0)
    model = cls(**facts(f=dm.num_time_features), **E2E)
    seen = []
    original = model.generative_loss

    def spy(batch, whitening, cond):
        seen.append((batch, whitening.mu.detach(), whitening.covariance.detach()))
        return original(batch, whitening, cond)

    monkeypatch.setattr(model, "generative_loss", spy)
    model.eval()  # no dropout, so a per-window recomputation is comparable
    for _epoch in range(2):
        for batch in dm.train_dataloader():
            model.loss(batch)
    assert len(seen) == 6
    scaled = dm.prepared.windows.scaled
    for batch, mu, cov in seen:
        for b, start in enumerate(batch.window_start.tolist()):
            assert torch.equal(batch.past_target[b], scaled[start - 16 : start])
            assert torch.equal(batch.future_target[b], scaled[start : start + 8])
            one = type(batch)(
                **{k: getattr(batch, k)[b : b + 1] for k in batch.__dataclass_fields__}
            )
            mu_b, _, cov_b = model.jmce.estimate(one)
            assert torch.allclose(mu[b], mu_b[0], atol=1e-5)
            assert torch.allclose(cov[b], cov_b[0], atol=1e-5)


def test_generator_argument_errors():
    with pytest.raises(ValueError, match="parameterization"):
        CWDiff(**facts(), prior="standard", parameterization="v", **SMALL_NET)
    with pytest.raises(ValueError, match="eta"):
        CWDiff(**facts(), prior="standard", eta=-1.0, **SMALL_NET)
    with pytest.raises(ValueError, match="solver"):
        CWFlow(**facts(), prior="standard", solver="rk4", **SMALL_NET)
    with pytest.raises(ValueError, match="beta_start"):
        CWDiff(**facts(), prior="standard", beta_end=1.5, **SMALL_NET)
