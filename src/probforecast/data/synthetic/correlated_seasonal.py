"""The built-in synthetic dataset: seasonal series with cross-correlated, autocorrelated errors.

Model (``t = 0..T-1``, ``N`` series)::

    y_t   = m_t + e_t + v_t                             y_t, m_t, e_t, v_t in R^N
    m_t,i = level_i + a_i sin(2 pi t / p1 + phi_i) + b_i sin(2 pi t / p2 + psi_i)
    e_t   = rho * e_{t-1} + eta_t,   eta_t ~ N(0, Sigma),   Sigma = F F^T + diag(s^2)
    v_t   ~ N(0, sigma_v^2 I)  white observation noise (``observation_noise_scale``; default 0)

``F`` is ``[N, K]`` (shared factors give cross-series correlation) and ``rho`` is the AR(1)
coefficient of the errors. ``e_0`` is drawn from the stationary law ``N(0, Sigma / (1 - rho^2))``.
Everything is kept as ground truth.

With ``sigma_v = 0`` the errors are AR(1) and an autoregressive model with lag 1 among its inputs
is well specified: its one-step residuals are white, so a GLS likelihood has nothing to find.
With ``sigma_v > 0`` the residual ``e_t + v_t`` is ARMA(1, 1): no finite set of lags whitens it,
the one-step residuals of an autoregressive forecaster stay autocorrelated, and that is the
temporal correlation the GLS likelihood models (used by ``configs/*/synthetic*.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CorrelatedSeasonalSample:
    """A generated dataset and its ground truth.

    Attributes:
        values: ``[T, N]`` observations ``y``.
        mean: ``[T, N]`` deterministic part ``m``.
        errors: ``[T, N]`` AR(1) errors ``e``.
        observation_noise: ``[T, N]`` white noise ``v`` (zeros when ``sigma_v = 0``).
        innovation_cov: ``[N, N]`` ``Sigma``.
        error_ar_coef: ``rho``.
        periods: the two seasonal periods ``(p1, p2)``.
    """

    values: np.ndarray
    mean: np.ndarray
    errors: np.ndarray
    innovation_cov: np.ndarray
    error_ar_coef: float
    periods: tuple[int, int]
    observation_noise: np.ndarray | None = None
    observation_noise_scale: float = 0.0


def generate_correlated_seasonal(
    num_series: int = 8,
    length: int = 2000,
    *,
    periods: tuple[int, int] = (24, 168),
    num_factors: int = 2,
    error_ar_coef: float = 0.7,
    noise_scale: float = 0.3,
    observation_noise_scale: float = 0.0,
    seed: int = 0,
) -> CorrelatedSeasonalSample:
    """Draw one dataset; see the module docstring for the model. Deterministic given ``seed``."""
    if num_series < 1 or length < 2:
        raise ValueError(f"need num_series >= 1 and length >= 2; got {num_series}, {length}")
    if not -1.0 < error_ar_coef < 1.0:
        raise ValueError(
            f"error_ar_coef must lie in (-1, 1) for a stationary AR(1); got {error_ar_coef}"
        )
    if not observation_noise_scale >= 0.0:
        raise ValueError(f"observation_noise_scale must be >= 0; got {observation_noise_scale}")
    rng = np.random.default_rng(seed)
    t = np.arange(length)[:, None]
    level = rng.uniform(5.0, 20.0, num_series)
    amp1, amp2 = rng.uniform(1.0, 3.0, num_series), rng.uniform(0.3, 1.5, num_series)
    ph1, ph2 = rng.uniform(0, 2 * np.pi, num_series), rng.uniform(0, 2 * np.pi, num_series)
    mean = (
        level
        + amp1 * np.sin(2 * np.pi * t / periods[0] + ph1)
        + amp2 * np.sin(2 * np.pi * t / periods[1] + ph2)
    )
    factors = rng.normal(0.0, noise_scale, (num_series, num_factors))
    idio = rng.uniform(0.5, 1.0, num_series) * noise_scale
    cov = factors @ factors.T + np.diag(idio**2)
    chol = np.linalg.cholesky(cov)
    innovations = rng.standard_normal((length, num_series)) @ chol.T
    errors = np.empty_like(innovations)
    errors[0] = innovations[0] / np.sqrt(1.0 - error_ar_coef**2)
    for step in range(1, length):
        errors[step] = error_ar_coef * errors[step - 1] + innovations[step]
    # drawn after everything else so that sigma_v = 0 reproduces the earlier datasets exactly
    noise = observation_noise_scale * rng.standard_normal((length, num_series))
    return CorrelatedSeasonalSample(
        values=mean + errors + noise,
        mean=mean,
        errors=errors,
        innovation_cov=cov,
        error_ar_coef=float(error_ar_coef),
        periods=(periods[0], periods[1]),
        observation_noise=noise,
        observation_noise_scale=float(observation_noise_scale),
    )
