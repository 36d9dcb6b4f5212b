"""The fast GP sampler draws from the exact kernel law: implied covariances, Monte-Carlo
covariance against the dense kernel matrix and KS tests against the dense eigh sampler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probforecast.data.synthetic.gp_sampler import (
    GPSampler,
    Grid,
    dense_gp_sample,
    jacobi_anger,
)
from probforecast.data.synthetic.kernels import KERNEL_BANK, from_json, kernel_matrix

BY = {leaf.label: leaf for leaf in KERNEL_BANK}
# one expression per route of the sampler (stats key in the comment)
ROUTES = {
    "circulant": "RBF(0.1)",
    "dense_core": "RationalQuadratic(0.1)",
    "features_periodic": ["*", "ExpSineSquared(24/1024)", "RBF(0.1)"],
    "features_periodic_dense_core": ["*", "ExpSineSquared(7/1024)", "RationalQuadratic(1.0)"],
    "periodic_product": [
        "*",
        ["*", "ExpSineSquared(4/1024)", "ExpSineSquared(26/1024)"],
        "ConstantKernel(1.0)",
    ],
    "dotproduct": ["*", ["+", "DotProduct(1.0)", "ExpSineSquared(14/1024)"], "DotProduct(0.0)"],
    "white": ["+", ["*", "WhiteKernel(0.1)", "DotProduct(10.0)"], "RBF(1.0)"],
    "sum_of_all": [
        "+",
        ["+", ["*", "RBF(10.0)", "ExpSineSquared(96/1024)"], "RationalQuadratic(10.0)"],
        "WhiteKernel(1.0)",
    ],
}
X = (np.arange(36) - 2) / 31.0  # an extended grid (2 lag steps on each side)


def test_jacobi_anger_series_reproduces_exp_sine_squared():
    d = np.linspace(0, 3, 301)
    for leaf in KERNEL_BANK[:21]:
        freqs, weights = jacobi_anger(*leaf.params)
        series = (weights[:, None] * np.cos(2 * np.pi * freqs[:, None] * d)).sum(0)
        np.testing.assert_allclose(series, leaf.stationary_value(d), atol=1e-14)
        assert np.all(weights >= 0)


def test_circulant_embedding_is_exact_where_accepted():
    sampler = GPSampler()
    grid = Grid(300, 0.0, 1 / 1023)
    for label in ("RBF(0.1)", "RBF(1.0)", "RationalQuadratic(10.0)"):
        root = sampler._embedding([BY[label]], grid)
        assert root is not None
        m = root.size
        implied_row = np.fft.ifft(root**2 * m).real[: grid.n]  # first row of the embedded circulant
        exact_row = BY[label].stationary_value(grid.step * np.arange(grid.n))
        assert np.max(np.abs(implied_row - exact_row)) <= 1e-10
    # a heavy-tailed core fails the exactness check and goes dense
    assert sampler._embedding([BY["RationalQuadratic(0.1)"]], grid) is None


def test_grid_must_be_uniform():
    with pytest.raises(ValueError, match="uniform"):
        GPSampler().sample(BY["RBF(0.1)"], np.array([0.0, 0.1, 0.3]), 1, np.random.default_rng(0))


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_empirical_covariance_matches_kernel_matrix(route):
    expr = from_json(ROUTES[route])
    sampler = GPSampler()
    rng = np.random.default_rng(5)
    num = 6000
    draws = sampler.sample(expr, X, num, rng)
    assert draws.shape == (num, X.size)
    exact = kernel_matrix(expr, X)
    emp = draws.T @ draws / num
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / num)
    z = np.abs(emp - exact) / np.maximum(se, 1e-9 * exact.diagonal().max())
    assert z.max() < 5.5, (route, z.max())
    assert abs(draws.mean(0)).max() < 5 * np.sqrt(exact.diagonal().max() / num)


@pytest.mark.parametrize("route", ["dense_core", "features_periodic", "dotproduct", "sum_of_all"])
def test_ks_against_the_dense_sampler(route):
    expr = from_json(ROUTES[route])
    rng = np.random.default_rng(11)
    fast = GPSampler().sample(expr, X, 3000, rng)
    dense = dense_gp_sample(expr, X, 3000, rng)
    projections = [np.eye(X.size)[3], np.eye(X.size)[-1], rng.standard_normal(X.size)]
    projections.append(np.diff(np.eye(X.size), axis=0)[10])  # an increment
    for w in projections:
        assert stats.ks_2samp(fast @ w, dense @ w).pvalue > 1e-3
    # and the squared norm (a non-linear statistic of the whole path)
    assert stats.ks_2samp((fast**2).sum(1), (dense**2).sum(1)).pvalue > 1e-3


def test_routes_are_taken_and_seeded_draws_reproduce():
    sampler = GPSampler()
    for expr in ROUTES.values():
        sampler.sample(from_json(expr), X, 2, np.random.default_rng(0))
    assert {"circulant", "dense_core", "features", "white"} <= set(sampler.stats)
    expr = from_json(ROUTES["sum_of_all"])
    a = GPSampler().sample(expr, X, 3, np.random.default_rng(9))
    b = GPSampler().sample(expr, X, 3, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


def test_dense_pieces_match_the_reference():
    from probforecast.data.synthetic.gp_sampler import _term_matrix, pivoted_cholesky
    from probforecast.data.synthetic.kernels import expand, random_kernel

    rng = np.random.default_rng(2)
    grid = Grid.from_points(X)
    for _ in range(100):
        for term in expand(random_kernel(rng, 5)):
            want = np.prod([leaf.matrix(X, X) for leaf in term], axis=0)
            np.testing.assert_allclose(_term_matrix(term, grid), want, rtol=1e-12, atol=1e-13)
    cov = kernel_matrix(from_json(["*", "ExpSineSquared(24/1024)", "RationalQuadratic(0.1)"]), X)
    factor = pivoted_cholesky(cov, 1e-10)
    residual = cov - factor @ factor.T
    assert np.abs(residual).max() <= 1e-10
    assert np.linalg.eigvalsh(residual).min() > -1e-12  # the dropped part is PSD


def test_periodic_features_times_pivoted_cholesky_core_on_a_grid_that_routes_there():
    """A periodic factor times a core whose factor is dense (pivoted Cholesky): on 36 points
    the whole term is cheaper dense (``dense_term``), so ``ROUTES`` never reached this route;
    on 128 points it goes through features x dense core. Assert the route, then the law."""
    expr = from_json(ROUTES["features_periodic_dense_core"])
    x = np.arange(128) / 127.0
    sampler = GPSampler()
    draws = sampler.sample(expr, x, 6000, np.random.default_rng(21))
    assert set(sampler.stats) == {"features", "dense_core"} and sampler.stats["features"] == 1
    exact = kernel_matrix(expr, x)
    emp = draws.T @ draws / draws.shape[0]
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / draws.shape[0])
    assert (np.abs(emp - exact) / se).max() < 6.0
    dense = dense_gp_sample(expr, x, 3000, np.random.default_rng(22))
    for w in (np.eye(x.size)[5], np.diff(np.eye(x.size), axis=0)[60]):
        assert stats.ks_2samp(draws[:3000] @ w, dense @ w).pvalue > 1e-3
