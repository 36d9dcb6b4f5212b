"""DynLMC: dynamic linear coregionalization (spec-dynlmc §2, Algorithm 1).

``C_i(t) = sum_{j<L} alpha_ij(t) * l_j(t - tau_ij)``, ``i < N``, ``t < T``, with

- ``L = clip(round(lambda * Weibull(beta)), m, N)`` latents ``l_j ~ GP(0, KernelSynth(J))`` drawn
  on a grid ``2 tau_max`` longer than the series (``extend`` edge mode), so a lag never reads
  outside the generated latents;
- integer lags ``tau_ij ~ U{-tau_max..tau_max}`` (positive: latent ``j`` leads channel ``i``);
- weights ``alpha_i.(t) = softmax_j(A_i.(t))`` with logits ``A [N, L, T]``:

  - ``drift``: ``A = AR1(rho, sigma)`` per ``(i, j)``, stationary start ``N(0, s^2)``,
    ``sigma = s sqrt(1 - rho^2)`` (``s`` = stationary logit std), ``rho ~ U[0.92, 0.99]``;
  - ``lag``: static logits ``A(t) = A(0) ~ N(0, s^2)``, ``tau_max ~ U{0..8}``;
  - ``regime``: sticky HMM ``s_t`` on ``K ~ U{2..6}`` states (``P_kk = kappa``, otherwise uniform
    on the others), regime means ``abar^(k) ~ N(0, s_r^2)`` ``[K, N, L]``;
    ``additive`` (Algorithm 1): ``A = abar^(s_t) + AR1``; ``convex`` (§3.2):
    ``A = (1 - eta) abar^(s_t) + eta AR1``;
  - ``combined``: each sample is one of the three above, chosen uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.signal import lfilter

from probforecast.data.synthetic.gp_sampler import GPSampler
from probforecast.data.synthetic.sample import DynLMCSample, draw_latents, number_of_latents

Variant = Literal["drift", "lag", "regime", "combined"]
VARIANTS: tuple[str, ...] = ("drift", "lag", "regime", "combined")


@dataclass(frozen=True)
class DynLMCConfig:
    """Per-sample parameter ranges (``(low, high)``: uniform per sample; ints inclusive).

    Defaults of the paper's unstated values are the spec's [inferred] ones (§2.3, §3.1).
    """

    weibull_shape: float = 1.0
    weibull_scale: float = 20.0
    min_latents: int | None = None
    max_kernels: int = 5
    rho: tuple[float, float] = (0.92, 0.99)
    logit_std: tuple[float, float] = (1.0, 3.0)
    weights: Literal["ar1", "static"] = "ar1"
    tau_max: tuple[int, int] = (0, 0)
    regime: Literal["none", "hmm"] = "none"
    n_regimes: tuple[int, int] = (2, 6)
    stickiness: float = 0.99
    regime_mean_std: float = 2.0
    regime_combination: Literal["additive", "convex"] = "additive"
    eta: float = 0.2
    standardize_latents: bool = False

    def check(self) -> None:
        lo, hi = self.rho
        if not (-1 < lo <= hi < 1):
            raise ValueError(f"rho range must lie in (-1, 1) with low <= high; got {self.rho}")
        if not 0 <= self.logit_std[0] <= self.logit_std[1]:
            raise ValueError(f"logit_std must be 0 <= low <= high; got {self.logit_std}")
        if not 0 <= self.tau_max[0] <= self.tau_max[1]:
            raise ValueError(f"tau_max must be 0 <= low <= high; got {self.tau_max}")
        if not 2 <= self.n_regimes[0] <= self.n_regimes[1]:
            raise ValueError(f"n_regimes must be 2 <= low <= high; got {self.n_regimes}")
        if not 0 <= self.stickiness <= 1:
            raise ValueError(f"stickiness must lie in [0, 1]; got {self.stickiness}")
        if self.weights not in ("ar1", "static"):
            raise ValueError(f"weights must be 'ar1' or 'static'; got {self.weights!r}")
        if self.regime not in ("none", "hmm"):
            raise ValueError(f"regime must be 'none' or 'hmm'; got {self.regime!r}")
        if self.regime_combination not in ("additive", "convex"):
            raise ValueError(
                f"regime_combination must be 'additive' or 'convex'; got {self.regime_combination!r}"
            )


PRESETS: dict[str, DynLMCConfig] = {
    "drift": DynLMCConfig(),
    "lag": DynLMCConfig(weights="static", tau_max=(0, 8)),
    "regime": DynLMCConfig(regime="hmm", rho=(0.99, 0.99), logit_std=(0.3, 0.3)),
}


def ar1_paths(
    rng: np.random.Generator, shape: tuple[int, ...], length: int, rho: float, sigma: float
) -> np.ndarray:
    """``[*shape, T]`` paths ``a_t = rho a_{t-1} + sigma eps_t``, ``a_0 ~ N(0, sigma^2/(1-rho^2))``."""
    eps = sigma * rng.standard_normal((*shape, length))
    if length > 0:
        eps[..., 0] /= np.sqrt(1.0 - rho**2)
    return lfilter([1.0], [1.0, -rho], eps, axis=-1)


def sticky_hmm(rng: np.random.Generator, length: int, n_states: int, stickiness: float):
    """``[T]`` states: uniform start; stay with prob ``kappa``, else move uniformly to another."""
    start = rng.integers(n_states)
    switch = rng.random(length - 1) >= stickiness
    shift = np.where(switch, rng.integers(1, n_states, size=length - 1), 0)
    return (start + np.concatenate([[0], np.cumsum(shift)])) % n_states


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def mix_lagged(weights: np.ndarray, latents: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``C[i, t] = sum_j weights[i, j, t] * latents[j, t - lags[i, j] + margin]`` -> ``[N, T]``."""
    n, n_lat, length = weights.shape
    margin = (latents.shape[1] - length) // 2
    if not np.any(lags):  # no lags: a plain time-varying mixture
        return np.einsum("ijt,jt->it", weights, latents[:, margin : margin + length])
    index = np.arange(length)[None, None, :] - lags[:, :, None] + margin  # [N, L, T]
    assert index.min() >= 0 and index.max() < latents.shape[1], "lags exceed the latent margin"
    lagged = latents[np.arange(n_lat)[None, :, None], index]
    return np.einsum("ijt,ijt->it", weights, lagged)


def generate_dynlmc(
    num_series: int = 160,
    length: int = 1024,
    variant: Variant = "drift",
    seed: int | np.random.SeedSequence = 0,
    config: DynLMCConfig | None = None,
    sampler: GPSampler | None = None,
) -> DynLMCSample:
    """One DynLMC sample ``[N, T]`` with its ground truth (see the module docstring).

    Args:
        variant: ``drift``, ``lag``, ``regime`` or ``combined``; selects the preset of
            ``PRESETS`` unless ``config`` is given (then ``variant`` only labels the sample).
        seed: int or ``SeedSequence``; the sample is a deterministic function of it.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown DynLMC variant {variant!r}; expected one of {VARIANTS}")
    if num_series < 1 or length < 2:
        raise ValueError(f"need num_series >= 1 and length >= 2; got {num_series}, {length}")
    rng = np.random.default_rng(seed)
    label = variant
    if config is None:
        if variant == "combined":
            label = ("drift", "lag", "regime")[int(rng.integers(3))]
        config = PRESETS[label]
    config.check()
    n_lat = number_of_latents(
        rng, num_series, config.weibull_shape, config.weibull_scale, config.min_latents
    )
    tau_max = int(rng.integers(config.tau_max[0], config.tau_max[1] + 1))
    latents, kernels = draw_latents(
        rng, n_lat, length, tau_max, config.max_kernels, sampler, config.standardize_latents
    )
    lags = rng.integers(-tau_max, tau_max + 1, size=(num_series, n_lat))
    rho = float(rng.uniform(*config.rho))
    s = float(rng.uniform(*config.logit_std))
    sigma = s * np.sqrt(1.0 - rho**2)
    if config.weights == "static":
        logits = np.repeat(s * rng.standard_normal((num_series, n_lat, 1)), length, axis=2)
    else:
        logits = ar1_paths(rng, (num_series, n_lat), length, rho, sigma)
    regimes = means = None
    n_regimes = None
    if config.regime == "hmm":
        n_regimes = int(rng.integers(config.n_regimes[0], config.n_regimes[1] + 1))
        regimes = sticky_hmm(rng, length, n_regimes, config.stickiness)
        means = config.regime_mean_std * rng.standard_normal((n_regimes, num_series, n_lat))
        per_step = np.moveaxis(means[regimes], 0, -1)  # [N, L, T]
        if config.regime_combination == "additive":
            logits = per_step + logits
        else:
            logits = (1.0 - config.eta) * per_step + config.eta * logits
    weights = softmax(logits, axis=1)
    series = mix_lagged(weights, latents, lags)
    params = {
        "generator": "dynlmc",
        "variant": variant,
        "preset": label,
        "num_latents": n_lat,
        "rho": rho if config.weights == "ar1" else None,
        "logit_std": s,
        "sigma": float(sigma) if config.weights == "ar1" else 0.0,
        "tau_max": tau_max,
        "n_regimes": n_regimes,
        "stickiness": config.stickiness if regimes is not None else None,
        "regime_combination": config.regime_combination if regimes is not None else None,
    }
    return DynLMCSample(series, weights, lags, latents, kernels, regimes, logits, means, params)


def with_overrides(variant: str, **changes) -> DynLMCConfig:
    """A preset with some fields changed, e.g. ``with_overrides("regime", stickiness=0.995)``."""
    if variant not in PRESETS:
        raise ValueError(f"no preset {variant!r}; expected one of {sorted(PRESETS)}")
    return replace(PRESETS[variant], **changes)


def ground_truth_covariance(sample: DynLMCSample) -> np.ndarray:
    """``Cov(C_i(t), C_k(s)) [N, T, N, T]`` given the sample's weights, lags and kernels
    (spec §6.3): ``sum_j alpha_ij(t) alpha_kj(s) k_j(x_{t - tau_ij + m}, x_{s - tau_kj + m})``
    over the independent zero-mean latents. Dense: for small ``N`` and ``T``."""
    from probforecast.data.synthetic.kernels import kernel_matrix

    n, n_lat, length = sample.weights.shape
    margin = sample.lag_margin
    x = (np.arange(length + 2 * margin) - margin) / (length - 1)
    index = np.arange(length)[None, None, :] - sample.lags[:, :, None] + margin  # [N, L, T]
    cov = np.zeros((n, length, n, length))
    for j, kernel in enumerate(sample.kernels):
        full = kernel_matrix(kernel, x)
        block = full[index[:, j][:, :, None, None], index[:, j][None, None, :, :]]
        w = sample.weights[:, j]  # [N, T]
        cov += w[:, :, None, None] * w[None, None, :, :] * block
    return cov
