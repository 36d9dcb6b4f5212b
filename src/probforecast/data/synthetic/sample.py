"""The sample type shared by the KernelSynth, LMC and DynLMC generators, and latent drawing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from probforecast.data.synthetic.gp_sampler import GPSampler
from probforecast.data.synthetic.kernels import Expr, key, random_kernel

_DEFAULT_SAMPLER = GPSampler()


def default_sampler() -> GPSampler:
    """The process-wide sampler (its caches are shared by every generator call)."""
    return _DEFAULT_SAMPLER


@dataclass(frozen=True)
class DynLMCSample:
    """One synthetic multivariate dataset and its ground truth.

    ``series[i, t] = sum_j weights[i, j, t] * latents[j, t - lags[i, j] + lag_margin]``.

    Attributes:
        series: ``[N, T]`` observed channels.
        weights: ``[N, L, T]`` mixing weights ``alpha_ij(t)`` (rows sum to one for LMC/DynLMC;
            identity for KernelSynth). May be a broadcast view for static weights.
        lags: ``[N, L]`` integer lags in ``[-tau_max, tau_max]`` (positive: latent leads).
        latents: ``[L, T + 2 tau_max]`` GP draws on the grid ``x_u = (u - tau_max) / (T - 1)``.
        kernels: ``L`` kernel expressions (``kernels.to_json`` / ``str`` serialise them).
        regimes: ``[T]`` HMM states, or None.
        logits: ``[N, L, T]`` pre-softmax logits (DynLMC), or None.
        regime_means: ``[K, N, L]`` regime logit means, or None.
        params: the per-sample draws (variant, L, rho, sigma, tau_max, K, stickiness, ...).
    """

    series: np.ndarray
    weights: np.ndarray
    lags: np.ndarray
    latents: np.ndarray
    kernels: tuple[Expr, ...]
    regimes: np.ndarray | None = None
    logits: np.ndarray | None = None
    regime_means: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    @property
    def lag_margin(self) -> int:
        return (self.latents.shape[1] - self.series.shape[1]) // 2

    @property
    def kernel_keys(self) -> list[str]:
        return [key(k) for k in self.kernels]


def number_of_latents(
    rng: np.random.Generator,
    num_series: int,
    weibull_shape: float,
    weibull_scale: float,
    min_latents: int | None,
) -> int:
    """``L = clip(round(scale * Weibull(shape)), m, N)`` with ``m = max(2, N // 20)`` default."""
    low = max(2, num_series // 20) if min_latents is None else min_latents
    low = min(low, num_series)
    return int(np.clip(np.rint(weibull_scale * rng.weibull(weibull_shape)), low, num_series))


def draw_latents(
    rng: np.random.Generator,
    count: int,
    length: int,
    margin: int,
    max_kernels: int,
    sampler: GPSampler | None,
    standardize: bool = False,
) -> tuple[np.ndarray, tuple[Expr, ...]]:
    """``count`` KernelSynth latents ``[count, length + 2 margin]`` on the extended grid
    ``x_u = (u - margin) / (length - 1)`` (the interior is Chronos' ``linspace(0, 1, length)``)."""
    if length < 2:
        raise ValueError(f"length must be >= 2; got {length}")
    sampler = sampler or _DEFAULT_SAMPLER
    x = (np.arange(length + 2 * margin) - margin) / (length - 1)
    kernels = tuple(random_kernel(rng, max_kernels) for _ in range(count))
    latents = np.stack([sampler.sample(k, x, 1, rng)[0] for k in kernels])
    if standardize:
        std = latents.std(axis=1, keepdims=True)
        latents = (latents - latents.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
    return latents, kernels
