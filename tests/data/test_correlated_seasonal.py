"""The built-in synthetic generator: its ground truth and the residual structure it promises."""

from __future__ import annotations

import numpy as np
import pytest

from probforecast.data.synthetic import generate_correlated_seasonal


def _oracle_ar1_residuals(sample) -> np.ndarray:
    """``r_t = x_t - rho x_{t-1}`` with ``x = y - m``: the residual of the true AR(1) predictor."""
    x = sample.values - sample.mean
    return x[1:] - sample.error_ar_coef * x[:-1]


def _lag1_autocorr(r: np.ndarray) -> np.ndarray:
    r = r - r.mean(0)
    return (r[1:] * r[:-1]).mean(0) / (r * r).mean(0)


def test_values_are_mean_plus_errors_plus_observation_noise():
    s = generate_correlated_seasonal(4, 300, observation_noise_scale=0.5, seed=3)
    np.testing.assert_allclose(s.values, s.mean + s.errors + s.observation_noise)
    assert s.observation_noise_scale == 0.5


def test_zero_observation_noise_reproduces_the_ar1_dataset():
    a = generate_correlated_seasonal(4, 300, seed=3)
    b = generate_correlated_seasonal(4, 300, observation_noise_scale=0.7, seed=3)
    np.testing.assert_array_equal(a.values, a.mean + a.errors)
    np.testing.assert_array_equal(a.errors, b.errors)  # noise drawn last: same errors


@pytest.mark.parametrize("sigma_v", [0.0, 0.4])
def test_residual_autocorrelation_matches_the_arma11_closed_form(sigma_v):
    """``r_t = eta_t + v_t - rho v_{t-1}``, so ``corr(r_t, r_{t-1}) = -rho s_v^2 / (s_eta^2 + s_v^2 (1 + rho^2))``:
    zero without observation noise (AR(1) errors are whitened by lag 1), negative with it."""
    rho = 0.9
    s = generate_correlated_seasonal(
        3, 20_000, error_ar_coef=rho, observation_noise_scale=sigma_v, seed=0
    )
    var_eta = np.diag(s.innovation_cov)
    expected = -rho * sigma_v**2 / (var_eta + sigma_v**2 * (1 + rho**2))
    got = _lag1_autocorr(_oracle_ar1_residuals(s))
    np.testing.assert_allclose(
        got, expected, atol=0.03
    )  # ~4 standard errors at T = 20k; the effect is ~ -0.3


def test_negative_observation_noise_is_rejected():
    with pytest.raises(ValueError, match="observation_noise_scale"):
        generate_correlated_seasonal(2, 50, observation_noise_scale=-0.1)


@pytest.mark.parametrize("sigma_v", [0.0, 0.5])
def test_kalman_filter_equals_dense_gaussian_conditioning(sigma_v):
    """``e_{s-1} | x_{s-P..s-1}`` from the filter vs the float64 Schur complement of the joint."""
    from probforecast.data.synthetic.correlated_seasonal_oracle import filter_errors

    s = generate_correlated_seasonal(
        2, 40, error_ar_coef=0.8, observation_noise_scale=sigma_v, seed=5
    )
    start, ctx, n = 30, 6, 2
    rho, cov = s.error_ar_coef, s.innovation_cov
    lag = np.abs(np.arange(ctx)[:, None] - np.arange(ctx)[None, :])
    cov_e = np.kron(rho**lag, cov / (1 - rho**2))  # [(ctx n), (ctx n)], time-major
    cov_x = cov_e + sigma_v**2 * np.eye(ctx * n)
    cross = cov_e[-n:]  # Cov(e_{s-1}, x_context)
    x = (s.values - s.mean)[start - ctx : start].reshape(-1)
    mean_ref = cross @ np.linalg.solve(cov_x, x)
    var_ref = cov_e[-n:, -n:] - cross @ np.linalg.solve(cov_x, cross.T)
    mean, var = filter_errors(s, start, ctx)
    np.testing.assert_allclose(mean, mean_ref, atol=1e-10)
    np.testing.assert_allclose(var, var_ref, atol=1e-10)


def test_oracle_samples_have_the_ar1_closed_form_moments_without_observation_noise():
    from probforecast.data.synthetic.correlated_seasonal_oracle import oracle_samples

    s = generate_correlated_seasonal(3, 200, error_ar_coef=0.7, seed=2)
    start, q = 150, 4
    draws = oracle_samples(s, start, 24, q, 40_000, np.random.default_rng(0))  # [S, Q, N]
    x_last = s.values[start - 1] - s.mean[start - 1]
    k = np.arange(1, q + 1)[:, None]
    mean = s.mean[start : start + q] + 0.7**k * x_last
    var = np.diag(s.innovation_cov) * (1 - 0.7 ** (2 * k)) / (1 - 0.7**2)
    np.testing.assert_allclose(draws.mean(0), mean, atol=4 * np.sqrt(var.max() / 40_000))
    np.testing.assert_allclose(draws.var(0), var, rtol=0.04)
