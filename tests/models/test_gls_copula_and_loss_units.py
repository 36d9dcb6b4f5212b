"""``marginal: copula`` wiring of the GLS forecasters (loss and sampler work on
``Phi^{-1}(F~(z))`` with ``F~`` the context's empirical CDF, samples mapped back through its
quantile function) and two edge cases of the loss units: ``reg_w`` below 1 and a single
observed horizon value (dense float64 references)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from probforecast.models.gls.copula import EmpiricalCopula
from probforecast.models.noise import SampleNoise
from tests.models.gls_fixtures import BACKBONES, double_training_batch, small_gls_model

Q, D = 4, 2


@pytest.fixture(scope="module")
def data():
    b, dm = double_training_batch(12, Q, 3)
    past_observed = b.past_observed.clone()
    past_observed[1, 3, 0] = False  # a missing context value: the marginal ignores it
    return dataclasses.replace(b, past_observed=past_observed), dm


def build(kind, dm, **kwargs):
    return small_gls_model(kind, dm, seed=7, spread=False, **kwargs)


def pair(kind, dm, **kwargs):
    """A copula model and a Gaussian-marginal model with the same weights."""
    copula = build(kind, dm, marginal="copula", **kwargs)
    gaussian = build(kind, dm, **kwargs)
    gaussian.load_state_dict(copula.state_dict())
    return copula, gaussian


def to_gaussian_batch(batch):
    marginals = EmpiricalCopula.fit(batch.past_target, batch.past_observed)
    return marginals, dataclasses.replace(
        batch,
        past_target=marginals.to_gaussian(batch.past_target),
        future_target=marginals.to_gaussian(batch.future_target),
    )


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_copula_loss_is_the_gaussian_loss_of_the_transformed_values(kind, data):
    batch, dm = data
    copula, gaussian = pair(kind, dm, likelihood="gls", cross_correlation_horizon=D)
    _, transformed = to_gaussian_batch(batch)
    expected = gaussian.loss(transformed)
    torch.testing.assert_close(copula.loss(batch), expected, rtol=1e-12, atol=1e-12)
    # and it is not the Gaussian loss of the raw values
    assert (gaussian.loss(batch) - expected).abs() > 1e-3


@pytest.mark.parametrize("likelihood", ["gls", "independent"])
def test_copula_samples_are_the_gaussian_samples_mapped_back(likelihood, data):
    batch, dm = data
    copula, gaussian = pair("gpvar", dm, likelihood=likelihood)
    marginals, transformed = to_gaussian_batch(batch)
    seeds = range(batch.batch_size)
    samples = copula.sample(batch, 5, SampleNoise.per_window(seeds))
    latent = gaussian.sample(transformed, 5, SampleNoise.per_window(seeds))
    torch.testing.assert_close(samples, marginals.from_gaussian(latent), rtol=1e-12, atol=1e-12)
    # the empirical quantile function stays within each series' observed context values
    ctx = batch.past_target.masked_fill(~batch.past_observed, float("nan"))
    low = ctx.nan_to_num(float("inf")).amin(1)[:, None, None]
    high = ctx.nan_to_num(float("-inf")).amax(1)[:, None, None]
    assert ((samples >= low - 1e-12) & (samples <= high + 1e-12)).all()
    assert (samples - latent).abs().max() > 1e-2  # the mapping is not the identity here


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_reg_w_below_one_is_applied(kind, data):
    """``loss(reg_w) - loss(0) = -reg_w sum_{b,w} log|C_{b,w}| / n_obs`` at reg_w = 0.5 too."""
    batch, dm = data
    plain = build(kind, dm, likelihood="gls", cross_correlation_horizon=D, reg_w=0.0)
    half = build(kind, dm, likelihood="gls", cross_correlation_horizon=D, reg_w=0.5)
    half.load_state_dict(plain.state_dict())
    seen = {}
    hook = plain.correlation.register_forward_hook(lambda m, i, o: seen.update(corr=o))
    loss0 = plain.loss(batch)
    hook.remove()
    log_det = torch.linalg.slogdet(seen["corr"]).logabsdet  # dense reference, [B, Q / D]
    assert log_det.shape == (batch.batch_size, Q // D) and bool((log_det < -0.05).all())
    expected = -0.5 * log_det.sum() / batch.future_observed.sum()
    torch.testing.assert_close(half.loss(batch) - loss0, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["independent", "gls"])
def test_a_single_observed_horizon_value_is_its_own_mean(likelihood, data):
    """One observed horizon value: the loss is its marginal NLL, ``-log N(z; mu, C_ii |L|^2 + d)``,
    divided by 1 (and the regulariser, off here)."""
    batch, dm = data
    observed = torch.zeros_like(batch.future_observed)
    observed[1, 2, 1] = True
    batch = dataclasses.replace(batch, future_observed=observed)
    extra = {"reg_w": 0.0} if likelihood == "gls" else {}
    model = build("gpvar", dm, likelihood=likelihood, **extra)
    seen = {}
    hooks = [model.head.register_forward_hook(lambda m, i, o: seen.update(heads=o))]
    if model.correlation is not None:
        hooks.append(model.correlation.register_forward_hook(lambda m, i, o: seen.update(c=o)))
    loss = model.loss(batch)
    for hook in hooks:
        hook.remove()
    mu, factor, diag = (x[1, 2, 1] for x in seen["heads"])  # [B, Q, N] horizon heads
    # C's diagonal (1 + the kernel's 1e-6 jitter for gls; D = Q: window 0, position 2)
    c_ii = seen["c"][1, 0, 2, 2] if "c" in seen else 1.0
    var = c_ii * (factor**2).sum() + diag
    expected = -torch.distributions.Normal(mu, var.sqrt()).log_prob(batch.future_target[1, 2, 1])
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
