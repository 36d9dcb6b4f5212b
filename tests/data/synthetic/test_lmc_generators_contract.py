"""kernel_synth / lmc_synth: documented defaults (TimePFN / Chronos values), the returned ground
truth (identity or Dirichlet weights, zero integer lags, latents on the series grid), the
sampler argument, seeding and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from probforecast.data.synthetic.gp_sampler import GPSampler
from probforecast.data.synthetic.kernels import key, random_kernel
from probforecast.data.synthetic.lmc import kernel_synth, lmc_synth


class CountingSampler(GPSampler):
    """A GPSampler that records the grids it is asked to sample on."""

    def __init__(self):
        super().__init__()
        self.grids: list[np.ndarray] = []

    def sample(self, expr, x, num, rng):
        self.grids.append(np.array(x))
        return super().sample(expr, x, num, rng)


def _chronos_kernels(seed: int, count: int, max_kernels: int) -> list[str]:
    """The first draws of ``default_rng(seed)``: ``count`` KernelSynth(J) expressions."""
    rng = np.random.default_rng(seed)
    return [key(random_kernel(rng, max_kernels)) for _ in range(count)]


def test_kernel_synth_defaults_are_timepfn_multivariate_kernelsynth():
    # TimePFN's multivariate KernelSynth: C = 160 channels of LENGTH = 1024 (Chronos
    # kernel-synth.py), J = 5 kernels at most; seed 0 by default (docs/synthetic.md)
    wide = kernel_synth(length=8)
    assert wide.series.shape == (160, 8) and wide.latents.shape == (160, 8)
    assert [key(k) for k in wide.kernels] == _chronos_kernels(0, 160, 5)
    long = kernel_synth(num_series=1)
    assert long.series.shape == (1, 1024) and long.latents.shape == (1, 1024)


def test_kernel_synth_ground_truth_is_the_identity_lmc():
    sampler = CountingSampler()
    s = kernel_synth(3, 16, seed=5, max_kernels=2, sampler=sampler)
    assert [key(k) for k in s.kernels] == _chronos_kernels(5, 3, 2)
    # latents on Chronos' grid linspace(0, 1, T) (no lag margin), sampled by the given sampler
    assert len(sampler.grids) == 3
    for grid in sampler.grids:
        np.testing.assert_allclose(grid, np.linspace(0, 1, 16), rtol=0, atol=1e-15)
    assert s.series.shape == (3, 16) and s.latents.shape == (3, 16) and s.lag_margin == 0
    np.testing.assert_array_equal(s.series, s.latents)
    assert s.weights.shape == (3, 3, 16)
    np.testing.assert_array_equal(s.weights, np.broadcast_to(np.eye(3)[:, :, None], (3, 3, 16)))
    assert s.lags.shape == (3, 3) and s.lags.dtype == np.int64 and not s.lags.any()
    assert s.params == {"generator": "kernelsynth", "variant": "kernelsynth", "num_latents": 3}
    # deterministic given the seed
    np.testing.assert_array_equal(kernel_synth(3, 16, seed=5, max_kernels=2).series, s.series)


def test_kernel_synth_argument_checks():
    assert kernel_synth(1, 4, seed=0).series.shape == (1, 4)  # one series is allowed
    with pytest.raises(ValueError, match="num_series must be >= 1"):
        kernel_synth(0, 4)


def test_lmc_synth_defaults():
    # TimePFN LMCSynth defaults of the spec (spec-dynlmc §2 step 1, [inferred]): C = 160,
    # T = 1024, L = clip(rint(20 * Weibull(1.0)), max(2, C // 20), C), J = 5, seed 0
    rng = np.random.default_rng(4)
    n_lat = int(np.clip(np.rint(20.0 * rng.weibull(1.0)), 160 // 20, 160))
    assert n_lat == 76  # seed 4: shape 2.0 would give 39 and scale 21 gives 80
    s = lmc_synth(length=8, seed=4)
    assert s.series.shape == (160, 8) and s.params["num_latents"] == n_lat
    assert s.latents.shape == (n_lat, 8) and s.weights.shape == (160, n_lat, 8)
    # the kernels follow the Weibull draw in the same stream: J = 5
    rng = np.random.default_rng(4)
    rng.weibull(1.0)
    assert [key(k) for k in s.kernels] == [key(random_kernel(rng, 5)) for _ in range(n_lat)]
    assert lmc_synth(length=8).params == lmc_synth(length=8, seed=0).params
    assert lmc_synth(num_series=2).series.shape == (2, 1024)


def test_lmc_synth_ground_truth_and_sampler():
    sampler = CountingSampler()
    s = lmc_synth(6, 12, seed=3, min_latents=5, dirichlet=(0.5, 0.5), sampler=sampler)
    # seed 3: rint(20 * Weibull) = 2 < min_latents, so L = min_latents = 5 (not the default 2)
    assert s.params == {
        "generator": "lmc",
        "variant": "lmc",
        "num_latents": 5,
        "dirichlet_concentration": 0.5,
    }
    assert len(sampler.grids) == 5
    for grid in sampler.grids:
        np.testing.assert_allclose(grid, np.linspace(0, 1, 12), rtol=0, atol=1e-15)
    assert s.latents.shape == (5, 12) and s.lag_margin == 0
    assert s.lags.shape == (6, 5) and s.lags.dtype == np.int64 and not s.lags.any()
    w = s.weights[:, :, 0]
    np.testing.assert_array_equal(s.weights, np.broadcast_to(w[:, :, None], (6, 5, 12)))
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-12)
    assert np.all(w >= 0)
    np.testing.assert_allclose(s.series, w @ s.latents, rtol=1e-12, atol=1e-12)
    again = lmc_synth(6, 12, seed=3, min_latents=5, dirichlet=(0.5, 0.5))
    np.testing.assert_array_equal(again.series, s.series)


def test_lmc_synth_argument_checks():
    assert lmc_synth(1, 4, seed=0).series.shape == (1, 4)  # one series (and L = 1) is allowed
    with pytest.raises(ValueError, match="num_series must be >= 1"):
        lmc_synth(0, 4)
    with pytest.raises(ValueError, match="dirichlet range"):
        lmc_synth(4, 8, dirichlet=(0.0, 0.5))  # low must be > 0
    with pytest.raises(ValueError, match="dirichlet range"):
        lmc_synth(4, 8, dirichlet=(0.6, 0.5))
