"""GPSampler's dense-factor cache: the documented memory budget and its byte accounting."""

from __future__ import annotations

import numpy as np

from probforecast.data.synthetic.gp_sampler import GPSampler
from probforecast.data.synthetic.kernels import from_json


def test_cache_budget_is_cache_mib_mebibytes():
    assert GPSampler().cache_bytes == 256 * 1024 * 1024  # documented default: 256 MiB
    assert GPSampler(cache_mib=3).cache_bytes == 3 * 1024 * 1024


def test_cached_bytes_are_the_sum_of_the_cached_factors():
    sampler = GPSampler()
    assert sampler._dense_bytes == 0 and not sampler._dense
    x = np.linspace(0, 1, 40)
    rng = np.random.default_rng(0)
    # RationalQuadratic(0.1) fails the circulant check and is factorized densely (its own route)
    for label in ("RationalQuadratic(0.1)", "RationalQuadratic(1.0)"):
        sampler.sample(from_json(label), x, 2, rng)
        assert sampler._dense
        assert sampler._dense_bytes == sum(f.nbytes for f in sampler._dense.values())
    # a budget of 0 bytes keeps only the newest factor, and the count follows the evictions
    tiny = GPSampler(cache_mib=0)
    for label in ("RationalQuadratic(0.1)", "RationalQuadratic(1.0)"):
        tiny.sample(from_json(label), x, 1, rng)
    assert len(tiny._dense) == 1
    assert tiny._dense_bytes == next(iter(tiny._dense.values())).nbytes
