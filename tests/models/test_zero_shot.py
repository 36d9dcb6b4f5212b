"""``ZeroShotForecaster``: one set of weights for any number of series, instance normalisation,
and cross-series attention that really mixes series (or not, when switched off)."""

from __future__ import annotations

import math

import pytest
import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models import ZeroShotForecaster
from probforecast.models.noise import SampleNoise

P, Q = 20, 6


def batch(b: int, n: int, f: int = 3, seed: int = 0) -> ForecastBatch:
    gen = torch.Generator().manual_seed(seed)
    observed = torch.rand(b, P, n, generator=gen) > 0.1
    return ForecastBatch(
        torch.randn(b, P, n, generator=gen, dtype=torch.float64) * observed,
        observed,
        torch.randn(b, P, f, generator=gen),
        torch.randn(b, Q, f, generator=gen),
        torch.randn(b, Q, n, generator=gen, dtype=torch.float64),
        torch.rand(b, Q, n, generator=gen) > 0.2,
        torch.arange(n).expand(b, n).clone(),
        torch.zeros(b, n),
        torch.ones(b, n),
        torch.arange(b) + P,
    )


def model(target_dim: int = 4, num_time_features: int = 3, **kwargs) -> ZeroShotForecaster:
    torch.manual_seed(0)
    kw = {"patch_len": 8, "d_model": 8, "n_heads": 2, "dropout": 0.0, **kwargs}
    return ZeroShotForecaster(target_dim, P, Q, "h", num_time_features, **kw).double().eval()


def test_weights_of_one_dataset_forecast_another_with_other_series_and_features():
    source = model(target_dim=4, num_time_features=3)
    target = model(target_dim=9, num_time_features=1)
    target.load_state_dict(source.state_dict())  # nothing depends on N or F
    out = target.sample(batch(2, 9, f=1), 5, SampleNoise.per_window([1, 2]))
    assert out.shape == (2, 5, Q, 9) and torch.isfinite(out).all()


def test_forecast_is_equivariant_to_an_affine_map_of_each_series():
    """Instance normalisation: ``a x + c`` per series gives ``a y + c`` (same noise)."""
    m = model()
    x = batch(3, 4)
    a = torch.tensor([0.5, 2.0, 30.0, 1.3], dtype=torch.float64)  # contexts stay above the floor
    c = torch.tensor([-3.0, 0.0, 100.0, 7.0], dtype=torch.float64)
    moved = ForecastBatch(**{**vars(x), "past_target": (x.past_target * a + c) * x.past_observed})
    seeds = [4, 5, 6]
    y = m.sample(x, 4, SampleNoise.per_window(seeds))
    y_moved = m.sample(moved, 4, SampleNoise.per_window(seeds))
    torch.testing.assert_close(y_moved, a * y + c, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mixing", [True, False])
def test_cross_series_attention_is_what_lets_one_series_inform_another(mixing):
    m = model(channel_mixing=mixing)
    x = batch(1, 4)
    past = x.past_target.clone()
    past[..., 3] = 5 * torch.sin(torch.arange(P, dtype=torch.float64))  # only series 3 changes
    other = ForecastBatch(
        **{**vars(x), "past_target": past, "past_observed": x.past_observed | True}
    )
    base = ForecastBatch(**{**vars(x), "past_observed": x.past_observed | True})
    mu, sigma, _, _ = m.normalised_parameters(base)
    mu2, sigma2, _, _ = m.normalised_parameters(other)
    changed = (mu2[..., :3] - mu[..., :3]).abs().max() + (
        sigma2[..., :3] - sigma[..., :3]
    ).abs().max()
    assert (changed > 1e-6) == mixing
    assert (mu2[..., 3] - mu[..., 3]).abs().max() > 1e-6


def test_cross_series_attention_is_permutation_equivariant():
    m = model()
    x = batch(2, 5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    permuted = x.select_series(perm)
    mu, sigma, _, _ = m.normalised_parameters(x)
    mu_p, sigma_p, _, _ = m.normalised_parameters(permuted)
    torch.testing.assert_close(mu_p, mu[..., perm])
    torch.testing.assert_close(sigma_p, sigma[..., perm])


def test_loss_is_the_gaussian_nll_of_the_observed_horizon_in_normalised_units():
    m = model()
    x = batch(3, 4)
    mu, sigma, mean, std = m.normalised_parameters(x)
    z = (x.future_target - mean) / std
    nll = -torch.distributions.Normal(mu, sigma).log_prob(z) - 0.5 * math.log(2 * math.pi)
    expected = nll[x.future_observed].mean()
    torch.testing.assert_close(m.loss(x), expected)


def test_context_statistics_use_observed_steps_only_and_floor_flat_contexts():
    x = batch(2, 3)
    m = model(context_scale_floor=0.2)
    mean, std = m.context_statistics(x)
    for b in range(2):
        for n in range(3):
            values = x.past_target[b, :, n][x.past_observed[b, :, n]]
            assert mean[b, 0, n].item() == pytest.approx(values.mean().item())
            assert std[b, 0, n].item() == pytest.approx(values.std(unbiased=False).item())
    none = ForecastBatch(**{**vars(x), "past_observed": torch.zeros_like(x.past_observed)})
    mean, std = m.context_statistics(none)
    assert (mean == 0).all() and (std == 1).all()
    flat = ForecastBatch(**{**vars(x), "past_target": 0.01 * x.past_target + 4.0})
    assert (m.context_statistics(flat)[1] == 0.2).all()  # std ~0.01: floored


def test_samples_have_the_predicted_mean_and_std():
    m = model()
    x = batch(1, 2)
    mu, sigma, mean, std = m.normalised_parameters(x)
    draws = m.sample(x, 20_000, SampleNoise.per_window([3]))[0]  # [S, Q, N]
    torch.testing.assert_close(draws.mean(0), (mean + std * mu)[0], atol=0.05, rtol=0.02)
    torch.testing.assert_close(draws.std(0), (std * sigma)[0], atol=0.05, rtol=0.03)


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        ZeroShotForecaster(2, P, Q, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="min_scale and context_scale_floor must be > 0"):
        ZeroShotForecaster(2, P, Q, min_scale=0.0)
    with pytest.raises(ValueError, match="min_scale and context_scale_floor must be > 0"):
        ZeroShotForecaster(2, P, Q, context_scale_floor=0.0)
