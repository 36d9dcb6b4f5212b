"""generate_dynlmc: documented defaults, the per-sample parameter record, the drawn ranges
(inclusive integer ranges, AR(1) innovation scale, Gaussian logits), lags applied to the
series, the sampler / standardisation options and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probforecast.data.synthetic.dynlmc import (
    DynLMCConfig,
    generate_dynlmc,
    mix_lagged,
    with_overrides,
)
from probforecast.data.synthetic.gp_sampler import GPSampler


class CountingSampler(GPSampler):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def sample(self, expr, x, num, rng):
        self.calls += 1
        return super().sample(expr, x, num, rng)


def test_defaults_are_the_papers_shapes():
    # spec-dynlmc §2: N = 160 channels, T = 1024 steps; seed 0; the "drift" preset
    assert generate_dynlmc(length=8).series.shape == (160, 8)
    assert generate_dynlmc(num_series=1).series.shape == (1, 1024)
    a, b = generate_dynlmc(4, 8), generate_dynlmc(4, 8, "drift", seed=0)
    np.testing.assert_array_equal(a.series, b.series)
    assert a.params == b.params


def test_smallest_sizes_and_rejections():
    assert generate_dynlmc(1, 2, seed=0).series.shape == (1, 2)
    for n, t in ((0, 8), (3, 1)):
        with pytest.raises(ValueError, match="need num_series >= 1 and length >= 2"):
            generate_dynlmc(n, t)


def test_params_record_of_each_preset():
    keys = {"generator", "variant", "preset", "num_latents", "rho", "logit_std", "sigma",
            "tau_max", "n_regimes", "stickiness", "regime_combination"}  # fmt: skip
    drift = generate_dynlmc(3, 8, "drift", seed=1).params
    assert set(drift) == keys and drift["generator"] == "dynlmc" and drift["variant"] == "drift"
    # AR(1) innovations: sigma = s sqrt(1 - rho^2) keeps the stationary logit std at s
    assert drift["sigma"] == pytest.approx(drift["logit_std"] * np.sqrt(1 - drift["rho"] ** 2))
    assert 0.92 <= drift["rho"] <= 0.99 and 1.0 <= drift["logit_std"] <= 3.0
    assert drift["n_regimes"] is None and drift["stickiness"] is None
    assert drift["regime_combination"] is None
    lag = generate_dynlmc(3, 8, "lag", seed=1).params
    assert lag["rho"] is None and lag["sigma"] == 0.0 and lag["n_regimes"] is None
    regime = generate_dynlmc(3, 8, "regime", seed=1).params
    assert regime["stickiness"] == 0.99 and regime["regime_combination"] == "additive"
    assert 2 <= regime["n_regimes"] <= 6 and regime["variant"] == "regime"
    convex = generate_dynlmc(
        3, 8, "regime", 1, with_overrides("regime", regime_combination="convex")
    )
    assert convex.params["regime_combination"] == "convex"


def test_integer_ranges_are_inclusive():
    cfg = DynLMCConfig(regime="hmm", n_regimes=(2, 3), tau_max=(0, 2), min_latents=2)
    seen_k, seen_tau = set(), set()
    for seed in range(40):
        p = generate_dynlmc(3, 8, "regime", seed, cfg).params
        seen_k.add(p["n_regimes"])
        seen_tau.add(p["tau_max"])
    assert seen_k == {2, 3} and seen_tau == {0, 1, 2}


def test_min_latents_sampler_and_standardisation_options():
    sampler = CountingSampler()
    cfg = DynLMCConfig(min_latents=5, standardize_latents=True)
    s = generate_dynlmc(5, 16, "drift", 2, cfg, sampler=sampler)
    assert s.params["num_latents"] == 5 and sampler.calls == 5
    np.testing.assert_allclose(s.latents.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.latents.std(1), 1.0, rtol=1e-12)


def test_static_logits_and_regime_means_are_gaussian():
    s = generate_dynlmc(60, 2, "lag", seed=3, config=DynLMCConfig(weights="static", min_latents=20))
    z = s.logits[..., 0].ravel() / s.params["logit_std"]
    np.testing.assert_array_equal(s.logits[..., 1], s.logits[..., 0])  # constant in time
    assert stats.kstest(z, "norm").pvalue > 1e-3
    r = generate_dynlmc(60, 4, "regime", seed=3, config=with_overrides("regime", min_latents=20))
    assert stats.kstest(r.regime_means.ravel() / 2.0, "norm").pvalue > 1e-3  # regime_mean_std 2


def test_series_apply_the_lags():
    cfg = DynLMCConfig(weights="static", tau_max=(2, 2))
    s = generate_dynlmc(4, 10, "lag", seed=0, config=cfg)
    assert s.lag_margin == 2 and np.any(s.lags)
    want = np.zeros((4, 10))
    for i in range(4):
        for j in range(s.latents.shape[0]):
            for t in range(10):
                want[i, t] += s.weights[i, j, t] * s.latents[j, t - s.lags[i, j] + 2]
    np.testing.assert_allclose(s.series, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lag", [3, -3])
def test_mix_lagged_refuses_lags_beyond_the_margin(lag):
    weights = np.full((1, 1, 5), 1.0)
    latents = np.arange(9.0)[None]  # margin 2
    with pytest.raises(AssertionError, match="lags exceed the latent margin"):
        mix_lagged(weights, latents, np.array([[lag]]))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"regime": "markov"}, "regime must be"),
        ({"regime_combination": "max"}, "regime_combination must be"),
    ],
)
def test_config_rejects_unknown_options(changes, match):
    with pytest.raises(ValueError, match=match):
        DynLMCConfig(**changes).check()
