"""The static baselines: multivariate KernelSynth (Chronos / TimePFN) and TimePFN's LMCSynth.

- ``kernel_synth``: ``N`` independent KernelSynth series ``x_i ~ GP(0, KernelSynth(J))`` on
  ``linspace(0, 1, T)`` stacked into ``[N, T]`` (TimePFN's multivariate KernelSynth). As a
  ``DynLMCSample`` it is the LMC with ``L = N`` latents and identity weights.
- ``lmc_synth``: ``C = W l`` with ``L = clip(round(lambda * Weibull(beta)), max(2, N // 20), N)``
  latents, concentration ``d ~ U[d_min, d_max]`` and rows ``W_i ~ Dirichlet(d 1_L)``
  (each row sums to one; weights constant in time, no lags).
"""

from __future__ import annotations

import numpy as np

from probforecast.data.synthetic.gp_sampler import GPSampler
from probforecast.data.synthetic.sample import DynLMCSample, draw_latents, number_of_latents


def kernel_synth(
    num_series: int = 160,
    length: int = 1024,
    seed: int | np.random.SeedSequence = 0,
    max_kernels: int = 5,
    sampler: GPSampler | None = None,
) -> DynLMCSample:
    """``N`` independent KernelSynth series ``[N, T]``; deterministic given ``seed``."""
    if num_series < 1:
        raise ValueError(f"num_series must be >= 1; got {num_series}")
    rng = np.random.default_rng(seed)
    latents, kernels = draw_latents(rng, num_series, length, 0, max_kernels, sampler)
    eye = np.eye(num_series)[:, :, None]
    return DynLMCSample(
        series=latents.copy(),
        weights=np.broadcast_to(eye, (num_series, num_series, length)),
        lags=np.zeros((num_series, num_series), dtype=np.int64),
        latents=latents,
        kernels=kernels,
        params={"generator": "kernelsynth", "variant": "kernelsynth", "num_latents": num_series},
    )


def lmc_synth(
    num_series: int = 160,
    length: int = 1024,
    seed: int | np.random.SeedSequence = 0,
    *,
    weibull_shape: float = 1.0,
    weibull_scale: float = 20.0,
    min_latents: int | None = None,
    max_kernels: int = 5,
    dirichlet: tuple[float, float] = (0.1, 1.0),
    sampler: GPSampler | None = None,
) -> DynLMCSample:
    """TimePFN's static LMC ``[N, T]`` (see the module docstring); deterministic given ``seed``."""
    if num_series < 1:
        raise ValueError(f"num_series must be >= 1; got {num_series}")
    if not 0 < dirichlet[0] <= dirichlet[1]:
        raise ValueError(f"dirichlet range must be 0 < low <= high; got {dirichlet}")
    rng = np.random.default_rng(seed)
    n_lat = number_of_latents(rng, num_series, weibull_shape, weibull_scale, min_latents)
    latents, kernels = draw_latents(rng, n_lat, length, 0, max_kernels, sampler)
    concentration = float(rng.uniform(*dirichlet))
    mix = rng.dirichlet(np.full(n_lat, concentration), size=num_series)  # [N, L]
    return DynLMCSample(
        series=mix @ latents,
        weights=np.broadcast_to(mix[:, :, None], (num_series, n_lat, length)),
        lags=np.zeros((num_series, n_lat), dtype=np.int64),
        latents=latents,
        kernels=kernels,
        params={
            "generator": "lmc",
            "variant": "lmc",
            "num_latents": n_lat,
            "dirichlet_concentration": concentration,
        },
    )
