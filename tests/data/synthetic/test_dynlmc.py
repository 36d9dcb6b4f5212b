"""DynLMC ground truth (spec-dynlmc §6.4): softmax rows, the reconstruction identity (naive
loops), exact lag recovery, AR(1) rho recovery, HMM persistence, regime structure, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probforecast.data.synthetic import (
    DynLMCConfig,
    ar1_paths,
    generate_dynlmc,
    kernel_matrix,
    kernel_synth,
    lmc_synth,
    mix_lagged,
    softmax,
    sticky_hmm,
)
from probforecast.data.synthetic.dynlmc import with_overrides


@pytest.fixture(scope="module")
def samples():
    return {v: generate_dynlmc(12, 160, v, seed=4) for v in ("drift", "lag", "regime", "combined")}


@pytest.mark.parametrize("variant", ["drift", "lag", "regime", "combined"])
def test_shapes_weights_and_reconstruction(samples, variant):
    s = samples[variant]
    n, t = s.series.shape
    n_lat = s.params["num_latents"]
    assert (n, t) == (12, 160) and s.weights.shape == (n, n_lat, t) and s.lags.shape == (n, n_lat)
    assert np.all(np.isfinite(s.series))
    assert np.all(s.weights > 0)
    np.testing.assert_allclose(s.weights.sum(axis=1), 1.0, atol=1e-12)
    tau_max = s.params["tau_max"]
    assert s.latents.shape == (n_lat, t + 2 * tau_max) and s.lag_margin == tau_max
    assert np.all(np.abs(s.lags) <= tau_max) and s.lags.dtype.kind == "i"
    rebuilt = np.zeros((n, t))
    for i in range(n):  # C_i(t) = sum_j alpha_ij(t) l_j(t - tau_ij), latents offset by tau_max
        for j in range(n_lat):
            for step in range(t):
                rebuilt[i, step] += (
                    s.weights[i, j, step] * s.latents[j, step - s.lags[i, j] + tau_max]
                )
    np.testing.assert_allclose(s.series, rebuilt, rtol=1e-10, atol=1e-10)
    assert len(s.kernels) == n_lat
    if s.params["preset"] == "regime":
        assert s.regimes.shape == (t,) and s.regime_means.shape[1:] == (n, n_lat)
    else:
        assert s.regimes is None


def test_one_hot_weights_recover_each_lag_exactly():
    rng = np.random.default_rng(0)
    t, tau_max, n_lat = 400, 8, 3
    latents = np.cumsum(rng.standard_normal((n_lat, t + 2 * tau_max)), axis=1)
    latents = np.diff(latents, axis=1, prepend=0.0)  # white-ish latents: a sharp xcorr peak
    lags = rng.integers(-tau_max, tau_max + 1, size=(10, n_lat))
    owner = rng.integers(n_lat, size=10)
    weights = np.zeros((10, n_lat, t))
    weights[np.arange(10), owner] = 1.0
    series = mix_lagged(weights, latents, lags)
    for i in range(10):
        j = owner[i]
        best, best_r = None, -2.0
        for ell in range(-20, 21):  # r(ell) = Pearson(l_j[t], C_i[t + ell]) on the overlap
            step = np.arange(t)
            src = step + tau_max - ell  # latent index of time step - ell
            ok = (src >= 0) & (src < latents.shape[1])
            r = np.corrcoef(latents[j, src[ok]], series[i, ok])[0, 1]
            if r > best_r:
                best, best_r = ell, r
        assert best == lags[i, j]
        assert best_r == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("rho", [0.92, 0.99])
def test_ar1_rho_recovered_from_long_paths(rho):
    sigma = 0.3
    paths = ar1_paths(np.random.default_rng(1), (40, 10), 4000, rho, sigma)
    prev, cur = paths[..., :-1], paths[..., 1:]
    rho_hat = (prev * cur).sum() / (prev**2).sum()
    assert abs(rho_hat - rho) < 0.01
    innov = cur - rho * prev
    assert abs(innov.std() / sigma - 1) < 0.05
    assert abs(paths.var() / (sigma**2 / (1 - rho**2)) - 1) < 0.10


def test_rho_in_generated_logits():
    s = generate_dynlmc(30, 1024, "drift", seed=2, config=with_overrides("drift", min_latents=10))
    a = s.logits
    rho_hat = (a[..., :-1] * a[..., 1:]).sum() / (a[..., :-1] ** 2).sum()
    assert 0.92 <= s.params["rho"] <= 0.99
    assert abs(rho_hat - s.params["rho"]) < 0.01


@pytest.mark.parametrize(("kappa", "n_states"), [(0.99, 4), (0.95, 3)])
def test_hmm_persistence_matches_stickiness(kappa, n_states):
    rng = np.random.default_rng(3)
    chains = np.stack([sticky_hmm(rng, 1024, n_states, kappa) for _ in range(200)])
    assert chains.min() >= 0 and chains.max() < n_states
    stays = (chains[:, 1:] == chains[:, :-1]).ravel()
    ci = stats.binomtest(int(stays.sum()), stays.size).proportion_ci(0.999)
    assert ci.low <= kappa <= ci.high
    visits = np.bincount(chains.ravel(), minlength=n_states) / chains.size
    assert np.abs(visits - 1 / n_states).max() < 0.05


def test_regime_structure_without_noise():
    for combination in ("additive", "convex"):
        cfg = with_overrides("regime", logit_std=(0.0, 0.0), regime_combination=combination)
        s = generate_dynlmc(6, 500, "regime", seed=5, config=cfg)
        scale = 1.0 if combination == "additive" else 1 - cfg.eta
        want = softmax(scale * np.moveaxis(s.regime_means[s.regimes], 0, -1), axis=1)
        np.testing.assert_allclose(s.weights, want, atol=1e-14)
        change = np.abs(np.diff(s.weights, axis=2)).max(axis=(0, 1)) > 0
        np.testing.assert_array_equal(change, s.regimes[1:] != s.regimes[:-1])


def test_lag_law_is_discrete_uniform():
    cfg = with_overrides("lag", tau_max=(8, 8))
    lags = np.concatenate(
        [generate_dynlmc(40, 32, "lag", seed=k, config=cfg).lags.ravel() for k in range(6)]
    )
    counts = np.bincount(lags + 8, minlength=17)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(np.abs(lags).mean() - 72 / 17) < 0.25


def test_number_of_latents_range():
    for seed in range(30):
        s = lmc_synth(40, 16, seed=seed)
        assert 2 <= s.params["num_latents"] <= 40
        np.testing.assert_allclose(s.weights[:, :, 0].sum(1), 1.0, atol=1e-12)
        np.testing.assert_allclose(s.series, s.weights[:, :, 0] @ s.latents, atol=1e-12)


def test_static_limit_and_kernelsynth():
    cfg = DynLMCConfig(logit_std=(1.0, 1.0), weights="static")
    s = generate_dynlmc(5, 64, "drift", seed=1, config=cfg)
    np.testing.assert_array_equal(s.weights, np.repeat(s.weights[:, :, :1], 64, axis=2))
    ks = kernel_synth(4, 64, seed=0)
    np.testing.assert_array_equal(ks.series, ks.latents)


def test_determinism_under_a_seed():
    a = generate_dynlmc(8, 100, "combined", seed=np.random.SeedSequence(7, spawn_key=(3,)))
    b = generate_dynlmc(8, 100, "combined", seed=np.random.SeedSequence(7, spawn_key=(3,)))
    c = generate_dynlmc(8, 100, "combined", seed=np.random.SeedSequence(7, spawn_key=(4,)))
    np.testing.assert_array_equal(a.series, b.series)
    assert a.params == b.params
    assert not np.array_equal(a.series[:, :5], c.series[:, :5])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="variant"):
        generate_dynlmc(4, 32, "spiky")
    with pytest.raises(ValueError, match="rho"):
        generate_dynlmc(4, 32, "drift", config=DynLMCConfig(rho=(0.5, 1.0)))
    with pytest.raises(ValueError, match="num_series"):
        generate_dynlmc(0, 32)


def test_monte_carlo_covariance_matches_the_analytic_one():
    from probforecast.data.synthetic import GPSampler
    from probforecast.data.synthetic.dynlmc import ground_truth_covariance

    cfg = with_overrides("lag", tau_max=(3, 3), max_kernels=2)
    s = generate_dynlmc(3, 24, "lag", seed=8, config=cfg)
    want = ground_truth_covariance(s).reshape(72, 72)
    sampler, rng = GPSampler(), np.random.default_rng(0)
    x = (np.arange(24 + 6) - 3) / 23
    num = 3000
    draws = np.stack([sampler.sample(k, x, num, rng) for k in s.kernels], axis=1)  # [S, L, T+6]
    values = np.stack([mix_lagged(s.weights, d, s.lags).ravel() for d in draws])  # [S, N*T]
    emp = values.T @ values / num
    se = np.sqrt((np.outer(np.diag(want), np.diag(want)) + want**2) / num)
    assert np.max(np.abs(emp - want) / np.maximum(se, 1e-12)) < 5.5
    # the variance by a naive loop: Var C_i(t) = sum_j alpha_ij(t)^2 k_j(x_u, x_u), u = t - tau_ij + 3
    for i in range(3):
        for t in range(24):
            var = sum(
                s.weights[i, j, t] ** 2 * kernel_matrix(k, x[[t - s.lags[i, j] + 3]])[0, 0]
                for j, k in enumerate(s.kernels)
            )
            assert want[i * 24 + t, i * 24 + t] == pytest.approx(var, rel=1e-12)


def test_drift_speed_decreases_with_rho_at_fixed_logit_std():
    speeds = []
    for rho in (0.92, 0.96, 0.99):
        cfg = with_overrides("drift", rho=(rho, rho), logit_std=(2.0, 2.0), min_latents=6)
        s = generate_dynlmc(20, 400, "drift", seed=6, config=cfg)
        speeds.append(np.abs(np.diff(s.weights, axis=2)).mean())
    assert speeds[0] > speeds[1] > speeds[2]
    still = generate_dynlmc(
        5, 50, "drift", seed=6, config=with_overrides("drift", logit_std=(0, 0))
    )
    np.testing.assert_array_equal(still.weights, np.repeat(still.weights[:, :, :1], 50, axis=2))
