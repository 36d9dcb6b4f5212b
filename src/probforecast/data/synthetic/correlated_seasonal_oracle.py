"""The true predictive distribution of the built-in synthetic dataset (the "oracle" forecaster).

With ``x_t = y_t - m_t`` the data are the linear-Gaussian state-space model

    e_t = rho e_{t-1} + eta_t,  eta_t ~ N(0, Sigma);     x_t = e_t + v_t,  v_t ~ N(0, s_v^2 I),

so given a context ``x_{s-P..s-1}`` the law of the horizon is exact: a Kalman filter over the
context (started from the stationary law ``e ~ N(0, Sigma / (1 - rho^2))``, i.e. conditioning on
the context only, as a forecaster does) gives ``e_{s-1} | context ~ N(a, V)``; the future is then
rolled forward from a draw of it. With ``s_v = 0`` the filter is exact observation,
``a = x_{s-1}``, ``V = 0``. Scores of these samples are the floor that no forecaster can beat in
expectation (used as the "oracle" row of ``scripts/bench_gls_accuracy.py``).
"""

from __future__ import annotations

import numpy as np

from probforecast.data.synthetic.correlated_seasonal import CorrelatedSeasonalSample


def filter_errors(sample: CorrelatedSeasonalSample, start: int, context: int):
    """Kalman filter over ``x_{start-context .. start-1}``: mean ``a [N]``, covariance ``V [N, N]``
    of ``e_{start-1}`` given those observations."""
    if not context <= start <= sample.values.shape[0]:
        raise ValueError(f"need context <= start <= T; got {context}, {start}")
    rho, cov = sample.error_ar_coef, sample.innovation_cov
    noise_var = sample.observation_noise_scale**2
    n = cov.shape[0]
    x = sample.values[start - context : start] - sample.mean[start - context : start]
    mean, var = np.zeros(n), cov / (1.0 - rho**2)  # stationary prior of e at the first step
    for step in range(context):
        if step:
            mean, var = rho * mean, rho**2 * var + cov
        gain = np.linalg.solve(var + noise_var * np.eye(n), var).T  # var (var + s_v^2 I)^{-1}
        mean = mean + gain @ (x[step] - mean)
        var = var - gain @ var
        var = 0.5 * (var + var.T)
    return mean, var


def oracle_samples(
    sample: CorrelatedSeasonalSample,
    start: int,
    context: int,
    horizon: int,
    num_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``[S, Q, N]`` draws of ``y_{start .. start+Q-1}`` given the ``context`` values before it."""
    if start + horizon > sample.values.shape[0]:
        raise ValueError(
            f"horizon {start}+{horizon} runs past the series (T={sample.values.shape[0]})"
        )
    mean, var = filter_errors(sample, start, context)
    n = mean.shape[0]
    rho, chol = sample.error_ar_coef, np.linalg.cholesky(sample.innovation_cov)
    # V may be singular (exactly 0 without observation noise): factor by eigh, not Cholesky
    eigval, eigvec = np.linalg.eigh(var)
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    e = mean + rng.standard_normal((num_samples, n)) @ root.T
    out = np.empty((num_samples, horizon, n))
    for k in range(horizon):
        e = rho * e + rng.standard_normal((num_samples, n)) @ chol.T
        noise = sample.observation_noise_scale * rng.standard_normal((num_samples, n))
        out[:, k] = sample.mean[start + k] + e + noise
    return out
