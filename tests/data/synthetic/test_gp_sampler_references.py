"""GPSampler's pieces against independent references: modified Bessel closed forms (scipy.special.iv),
a greedy numpy pivoted Cholesky, eigen-decompositions built by construction, dense float64 kernel
matrices and Monte-Carlo covariances with stated tolerances (issue 19, mutation survivors)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import special

from probforecast.data.synthetic.gp_sampler import (
    GPSampler,
    Grid,
    _feature_rows,
    _prune,
    _trig_sum,
    jacobi_anger,
    pivoted_cholesky,
)
from probforecast.data.synthetic.kernels import KERNEL_BANK, Leaf, Node, kernel_matrix

BY = {leaf.label: leaf for leaf in KERNEL_BANK}


def _greedy_pivoted_cholesky(a: np.ndarray, tol: float) -> np.ndarray:
    """Textbook pivoted Cholesky: take the largest residual diagonal while it exceeds ``tol``."""
    r = np.array(a, dtype=np.float64)
    cols, piv = [], []
    for _ in range(len(a)):
        d = np.diag(r).copy()
        d[piv] = -np.inf
        i = int(np.argmax(d))
        if d[i] <= tol:
            break
        col = r[:, i] / np.sqrt(r[i, i])
        col[piv] = 0.0
        r = r - np.outer(col, col)
        cols.append(col)
        piv.append(i)
    return np.array(cols).T.reshape(len(a), len(cols))


def _mc_z(draws: np.ndarray, exact: np.ndarray) -> float:
    """Largest |empirical - exact| covariance entry in standard errors (Gaussian 4th moments)."""
    num = draws.shape[0]
    emp = draws.T @ draws / num
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / num)
    return float((np.abs(emp - exact) / se).max())


# ------------------------------------------------------------------ Jacobi-Anger / series pieces
@pytest.mark.parametrize("period,length_scale", [(0.3, 0.5), (0.25, 2.0), (1.0, 0.1)])
def test_jacobi_anger_weights_are_the_bessel_closed_form(period, length_scale):
    # exp(z cos t) = I_0(z) + 2 sum_k I_k(z) cos(k t) (Abramowitz-Stegun 9.6.34), t = 2 pi d / p,
    # and -2 sin^2(pi d/p)/l^2 = z (cos t - 1) with z = 1/l^2
    freqs, weights = jacobi_anger(period, length_scale)
    z = 1.0 / length_scale**2
    k = np.arange(freqs.size)
    want = np.exp(-z) * special.iv(k, z) * np.where(k == 0, 1.0, 2.0)
    np.testing.assert_allclose(freqs, k / period, rtol=1e-15)
    np.testing.assert_allclose(weights, want, rtol=1e-10, atol=1e-300)
    assert abs(weights.sum() - 1.0) < 1e-13  # k(0) = 1: no mass lost to the truncation
    d = np.linspace(0.0, 2.0, 101)
    series = weights @ np.cos(2 * np.pi * freqs[:, None] * d)
    exact = np.exp(-2 * np.sin(np.pi * d / period) ** 2 / length_scale**2)
    np.testing.assert_allclose(series, exact, atol=1e-13)


def test_prune_drops_the_smallest_weights_whose_sum_is_at_most_the_budget():
    freqs = np.array([1.0, 2.0, 3.0, 4.0])
    weights = np.array([0.25, 0.5, 0.25, 1.0])  # sorted cumsum 0.25, 0.5 (== budget), 1.0, 2.0
    kept_f, kept_w, dropped = _prune(freqs, weights, 0.5)
    np.testing.assert_array_equal(kept_f, [2.0, 4.0])
    np.testing.assert_array_equal(kept_w, [0.5, 1.0])
    assert dropped == 0.5


def test_trig_sum_is_the_direct_exponential_sum():
    rng = np.random.default_rng(3)
    freqs = np.array([0.0, 1.5, 4.0, 7.25])
    coeffs = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    grid = Grid(77, -0.3, 0.013)  # 77 is not a multiple of the block
    want = coeffs.T @ np.exp(2j * np.pi * freqs[:, None] * grid.x[None, :])
    np.testing.assert_allclose(_trig_sum(freqs, coeffs, grid), want, atol=1e-12)


def test_feature_rows_reproduce_the_term_kernel():
    # c * DotProduct(0.0) * DotProduct(1.0) * ExpSineSquared: poly (x x')(1 + x x') -> a = [0, 1, 1]
    x = np.linspace(-0.7, 1.3, 23)
    period, ls = 0.37, 0.8
    freqs, weights = jacobi_anger(period, ls)
    poly = np.convolve([0.0, 1.0], [1.0, 1.0])
    rows = _feature_rows(x, 2.5, poly, freqs, weights)
    # one row per a_q > 0 and per cos / sin (no sin row at frequency 0)
    assert rows.shape == (2 * (2 * freqs.size - 1), x.size)
    xx = np.outer(x, x)
    d = x[:, None] - x[None, :]
    exact = 2.5 * xx * (1.0 + xx) * np.exp(-2 * np.sin(np.pi * d / period) ** 2 / ls**2)
    np.testing.assert_allclose(rows.T @ rows, exact, atol=1e-12)


# ------------------------------------------------------------------ pivoted Cholesky
def test_pivoted_cholesky_is_the_greedy_max_diagonal_factor():
    rng = np.random.default_rng(7)
    b = rng.standard_normal((8, 8))
    full = b @ b.T + 0.5 * np.eye(8)  # full rank: LAPACK reports info == 0
    low = rng.standard_normal((10, 3))
    low = low @ low.T  # rank 3 exactly
    v = rng.standard_normal(6)
    rank_one = np.outer(v, v) + 1e-9 * np.eye(6)  # one pivot above the tolerance
    for cov, tol, rank in ((full, 1e-12, 8), (low, 1e-9, 3), (rank_one, 1e-6, 1)):
        factor = pivoted_cholesky(cov, tol)
        want = _greedy_pivoted_cholesky(cov, tol)
        assert factor.shape == (cov.shape[0], rank)
        np.testing.assert_allclose(factor, want, atol=1e-10)
        residual = cov - factor @ factor.T
        assert np.diag(residual).max() <= tol  # the stated stopping rule
        assert np.trace(residual) <= cov.shape[0] * tol
    np.testing.assert_allclose(
        pivoted_cholesky(low, 1e-9) @ pivoted_cholesky(low, 1e-9).T, low, atol=1e-10
    )


def _with_spectrum(eigenvalues):
    """``Q diag(eigenvalues) Q^T`` with ``Q`` the normalised 4x4 Hadamard matrix (constant
    diagonal ``mean(eigenvalues)``), and ``Q``."""
    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    return h @ np.diag(eigenvalues) @ h.T, h


def test_pivoted_cholesky_falls_back_to_the_clipped_eigendecomposition():
    # zero diagonal: LAPACK stops before the first pivot (rank 0), the eigh fallback clips the
    # negative eigenvalues and drops the smallest ones summing to <= tol (0 + 0 here; 0.5 stays)
    lam = np.array([-2.0, -0.5, 0.5, 2.0])
    cov, q = _with_spectrum(lam)
    factor = pivoted_cholesky(cov, 0.45)
    assert factor.shape == (4, 2)
    want = q[:, 2:] @ np.diag(lam[2:]) @ q[:, 2:].T
    np.testing.assert_allclose(factor @ factor.T, want, atol=1e-12)


def test_pivoted_cholesky_fallback_drops_mass_equal_to_tol():
    # eigenvalues -1, -0.5, 0.5, 1 (exact for these 2x2 blocks): clipped 0, 0, 0.5, 1 whose
    # cumulative sums 0, 0, 0.5 are all <= tol = 0.5 -> only the eigenvalue 1 is kept
    cov = np.zeros((4, 4))
    cov[0, 1] = cov[1, 0] = 0.5
    cov[2, 3] = cov[3, 2] = 1.0
    factor = pivoted_cholesky(cov, 0.5)
    assert factor.shape == (4, 1)
    np.testing.assert_allclose(
        factor @ factor.T, np.pad(np.full((2, 2), 0.5), ((2, 0), (2, 0))), atol=1e-14
    )


def test_dense_factor_tolerance_is_relative_to_the_largest_variance():
    grid = Grid(40, 0.0, 1 / 39)
    for term, tol in (
        ([BY["DotProduct(10.0)"], BY["RationalQuadratic(0.1)"]], 1e-6),  # max diag 101
        ([BY["DotProduct(0.0)"], BY["RationalQuadratic(0.1)"]], 1e-4),  # max diag 1
    ):
        for g in (grid, Grid(40, 0.0, 0.5 / 39)):  # the second has max diag 0.25 for DotProduct(0)
            cov = np.prod([leaf.matrix(g.x, g.x) for leaf in term], axis=0)
            factor = GPSampler(tol=tol)._dense_factor(("t",), term, g)
            want = _greedy_pivoted_cholesky(cov, tol * np.diag(cov).max())
            assert factor.shape == want.shape
            np.testing.assert_allclose(factor, want, atol=1e-8 * np.diag(cov).max())


def test_dense_factor_cache_is_lru_within_the_byte_budget():
    grid = Grid(60, 0.0, 1 / 59)
    labels = ("RationalQuadratic(0.1)", "RationalQuadratic(1.0)", "RationalQuadratic(10.0)")
    sizes = {lab: GPSampler()._dense_factor((lab,), [BY[lab]], grid).nbytes for lab in labels}
    sampler = GPSampler()
    sampler.cache_bytes = sizes[labels[0]] + sizes[labels[1]]  # room for exactly the first two
    keys = [((lab,), grid.n, grid.start, grid.step) for lab in labels]
    sampler._dense_factor((labels[0],), [BY[labels[0]]], grid)
    sampler._dense_factor((labels[1],), [BY[labels[1]]], grid)
    assert list(sampler._dense) == keys[:2]  # a budget met exactly evicts nothing
    sampler._dense_factor((labels[0],), [BY[labels[0]]], grid)  # a hit makes it most recent
    sampler._dense_factor((labels[2],), [BY[labels[2]]], grid)
    assert list(sampler._dense) == [keys[0], keys[2]]  # the least recently used one went
    assert sampler._dense_bytes == sizes[labels[0]] + sizes[labels[2]]


# ------------------------------------------------------------------ circulant embedding
def _clipped_mass(leaf: Leaf, grid: Grid, m: int) -> float:
    """``sum |negative eigenvalues| / m`` of the size-``m`` symmetric circulant of ``leaf``."""
    lags = grid.step * np.minimum(np.arange(m), m - np.arange(m))
    lam = np.fft.fft(leaf.stationary_value(lags)).real
    return float(-lam[lam < 0].sum() / m)


def test_embedding_starts_at_the_smallest_power_of_two_that_holds_the_grid():
    rbf = BY["RBF(0.1)"]
    for n, m in ((2, 2), (130, 512), (257, 512), (300, 1024)):
        grid = Grid(n, 0.0, 1 / (n - 1))  # x in [0, 1]: the lags up to m / 2 reach 1 >> 0.1
        root = GPSampler()._embedding([rbf], grid)
        assert root is not None and root.size == m
        implied_row = np.fft.ifft(root**2 * m).real[:n]
        np.testing.assert_allclose(
            implied_row, rbf.stationary_value(grid.step * np.arange(n)), atol=1e-10
        )
    # max_embedding is inclusive
    assert GPSampler(max_embedding=512)._embedding([rbf], Grid(130, 0.0, 1 / 129)).size == 512
    # tol = 0 still accepts an embedding without negative eigenvalues ([1 + k, 1 - k] for n = 2)
    assert GPSampler(tol=0.0)._embedding([rbf], Grid(2, 0.0, 0.1)).size == 2


def test_embedding_size_and_route_follow_the_clipped_mass_check():
    # RationalQuadratic(0.1) is heavy-tailed: the clipped mass shrinks slowly with m; choose tol
    # between the masses of two sizes and check the accepted size is the first that passes
    rq = BY["RationalQuadratic(0.1)"]
    for n in (64, 57):
        grid = Grid(n, 0.0, 0.05)  # k(h) = 0.9988 < k(0) = 1
        sizes = [128 * 2**j for j in range(4)]
        mass = [_clipped_mass(rq, grid, m) for m in sizes]
        assert np.all(np.diff(mass) < 0) and mass[-1] > 0
        for j in (1, 2):
            tol = mass[j] * (1 + 1e-6)  # passes at sizes[j], fails at sizes[j - 1]
            sampler = GPSampler(tol=tol)
            root = sampler._embedding([rq], grid)
            assert root.size == sizes[j]
            route, _ = sampler._core_route([rq], grid)
            assert route == ("circulant" if sizes[j] <= 8 * n else "dense")


def test_embedding_rejection_is_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger="probforecast.data.synthetic.gp_sampler"):
        assert (
            GPSampler()._embedding([BY["RationalQuadratic(0.1)"]], Grid(300, 0, 1 / 1023)) is None
        )
    assert [r.getMessage() for r in caplog.records] == [
        "circulant embedding rejected for ['RationalQuadratic(0.1)']"
    ]


# ------------------------------------------------------------------ core draws
def test_empty_core_draws_are_constant_paths_of_unit_variance():
    grid = Grid(5, 0.0, 0.25)
    draws = GPSampler()._core_draws([], grid, 4000, np.random.default_rng(1))
    assert draws.shape == (4000, 5)
    assert np.ptp(draws, axis=1).max() == 0.0  # covariance 1 everywhere: constant in x
    # variance 1 and independent rows (4000 draws: se of the variance 0.022, of the correlation 0.022)
    assert abs(draws[:, 0].var() - 1.0) < 0.11
    assert abs(np.corrcoef(draws[::2, 0], draws[1::2, 0])[0, 1]) < 0.11


def test_single_circulant_draws_have_the_kernel_covariance():
    """``count = 1`` (an odd count: the real part of one FFT pair) repeated 3000 times."""
    grid = Grid(16, 0.0, 1 / 31)
    rbf = BY["RBF(0.1)"]
    sampler = GPSampler()
    rng = np.random.default_rng(4)
    draws = np.concatenate([sampler._core_draws([rbf], grid, 1, rng) for _ in range(3000)])
    assert sampler.stats["circulant"] == 3000  # one count per call
    assert _mc_z(draws, kernel_matrix(rbf, grid.x)) < 5.5


def test_dense_core_draws_on_a_fresh_sampler_have_the_kernel_covariance():
    grid = Grid(20, 0.0, 1 / 19)
    rq = BY["RationalQuadratic(0.1)"]
    sampler = GPSampler()
    draws = sampler._core_draws([rq], grid, 3000, np.random.default_rng(6))
    assert sampler.stats["dense_core"] == 1
    assert _mc_z(draws, kernel_matrix(rq, grid.x)) < 5.5


def test_many_circulant_draws_span_several_fft_batches():
    # n = 65536 -> m = 2^17 -> 32 pairs per batch: 67 draws take a full batch and a partial odd one
    grid = Grid(65536, 0.0, 1 / 65535)
    draws = GPSampler()._core_draws([BY["RBF(0.1)"]], grid, 67, np.random.default_rng(8))
    assert draws.shape == (67, 65536)
    # unit-variance stationary paths: ~10 correlation lengths each, ~670 in all, so the pooled
    # mean square is 1 +- 0.055 (one se); each path's (also the second batch's) lies in (0.02, 5)
    ms = (draws**2).mean(1)
    assert abs(ms.mean() - 1.0) < 0.25
    assert ms.min() > 0.02 and ms.max() < 5.0
    assert np.unique(draws[:, 0]).size == 67


# ------------------------------------------------------------------ routes, stats and cache
def test_stats_count_every_route_call_and_circulant_cores_build_no_dense_factor():
    x = np.linspace(0, 1, 36)
    sampler = GPSampler()
    for _ in range(2):
        sampler.sample(BY["RBF(0.1)"], x, 2, np.random.default_rng(0))
    assert dict(sampler.stats) == {"features": 2, "circulant": 2}
    assert not sampler._dense  # the FFT route never factorizes the core densely
    sampler = GPSampler()
    for _ in range(2):
        sampler.sample(BY["RationalQuadratic(0.1)"], x, 2, np.random.default_rng(0))
        sampler.sample(BY["WhiteKernel(1.0)"], x, 2, np.random.default_rng(0))
    assert dict(sampler.stats) == {"features": 2, "dense_core": 2, "white": 2}
    assert len(sampler._dense) == 1  # the cost estimate and the draws share one cached factor


def test_cached_dense_factors_do_not_change_the_draws():
    x = np.linspace(0, 1, 30)
    expr = BY["RationalQuadratic(1.0)"]
    fresh = GPSampler().sample(expr, x, 3, np.random.default_rng(2))
    warm = GPSampler()
    warm.sample(BY["RationalQuadratic(0.1)"], x, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(warm.sample(expr, x, 3, np.random.default_rng(2)), fresh)


def test_constants_scale_and_periodic_factors_stay_features():
    c2 = Leaf("Constant", (2.0,), "ConstantKernel(2.0)")
    c3 = Leaf("Constant", (3.0,), "ConstantKernel(3.0)")
    expr = Node("*", Node("*", c2, c3), BY["ExpSineSquared(24/1024)"])
    x = np.linspace(0, 1, 12)
    sampler = GPSampler()
    draws = sampler.sample(expr, x, 4000, np.random.default_rng(12))
    assert dict(sampler.stats) == {"features": 1}  # no stationary core: no FFT, no factor
    assert _mc_z(draws, kernel_matrix(expr, x)) < 5.5  # variance 6 (se 2.2 %)


def test_white_times_dot_product_variance_is_x_squared():
    expr = Node("*", BY["DotProduct(0.0)"], BY["WhiteKernel(1.0)"])
    x = np.linspace(0.5, 3.0, 6)
    draws = GPSampler().sample(expr, x, 4000, np.random.default_rng(13))
    np.testing.assert_allclose(draws.var(0) / x**2, 1.0, atol=0.11)  # se 0.022
    assert _mc_z(draws, kernel_matrix(expr, x)) < 5.5


def test_documented_defaults():
    sampler = GPSampler()
    assert sampler.tol == 1e-10 and sampler.max_embedding == 1 << 19  # GPSampler signature / doc


def test_grid_from_points():
    grid = Grid.from_points(np.array([0.5, 0.75, 1.0, 1.25]))
    assert (grid.n, grid.start, grid.step) == (4, 0.5, 0.25)
    np.testing.assert_array_equal(grid.x, [0.5, 0.75, 1.0, 1.25])
    for bad in (np.zeros((2, 2)), np.array([1.0]), np.array([1.0, 0.0]), np.array([0, 1, 3.0])):
        with pytest.raises(ValueError):
            Grid.from_points(bad)
    x = np.arange(5) * 0.1
    x[2] += 0.5e-9 * 0.1  # within the 1e-9 relative uniformity tolerance
    assert Grid.from_points(x).n == 5
    x[2] += 2e-9 * 0.1
    with pytest.raises(ValueError, match="uniform"):
        Grid.from_points(x)


def test_dense_terms_are_counted_and_keyed_by_their_own_leaves():
    x = np.linspace(0, 1, 36)
    per = Node("*", BY["ExpSineSquared(4/1024)"], BY["ExpSineSquared(26/1024)"])
    first = Node("*", per, BY["RationalQuadratic(10.0)"])
    second = Node("*", per, BY["RationalQuadratic(1.0)"])
    fresh = GPSampler()
    want = fresh.sample(second, x, 3, np.random.default_rng(5))
    assert dict(fresh.stats) == {"dense_term": 1}  # too many features on 36 points: dense
    warm = GPSampler()
    warm.sample(first, x, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(warm.sample(second, x, 3, np.random.default_rng(5)), want)
    assert warm.stats["dense_term"] == 2
    assert sum(key[0][0] == "term" for key in warm._dense) == 2  # one factor per term


def test_dot_product_zero_offset_times_core_drops_the_constant_feature():
    # DotProduct(0.0) * RBF(1.0): a = [0, 1], one feature row x (a_0 = 0 gives none)
    expr = Node("*", BY["DotProduct(0.0)"], BY["RBF(1.0)"])
    x = np.linspace(0, 1, 10)
    sampler = GPSampler()
    draws = sampler.sample(expr, x, 4000, np.random.default_rng(14))
    assert sampler.stats["features"] == 1 and "dense_term" not in sampler.stats
    exact = kernel_matrix(expr, x) + 1e-300
    assert _mc_z(draws[:, 1:], exact[1:, 1:]) < 5.5
    assert np.all(draws[:, 0] == 0.0)  # variance x^2 = 0 at x = 0


def test_unit_frequency_sine_features_are_kept():
    # ExpSineSquared with period 1: frequencies 0, 1, 2, ... (each f > 0 has a cos and a sin part)
    leaf = Leaf("ExpSineSquared", (1.0, 1.0), "ExpSineSquared(1.0)")
    x = np.linspace(0, 1, 9)
    draws = GPSampler().sample(leaf, x, 4000, np.random.default_rng(15))
    assert _mc_z(draws, kernel_matrix(leaf, x)) < 5.5


def test_product_series_keeps_exact_frequencies_and_merges_equal_ones():
    """``cos(a) cos(b) = (cos(a + b) + cos(a - b)) / 2``: the frequencies come back exact (they
    were rounded to 9 decimals before, a kernel error of ~1e-9, above the sampler's 1e-10), and
    equal sums from different pairs are merged with their weights added."""
    from probforecast.data.synthetic.gp_sampler import _product_series

    fa, wa = np.array([0.0, 1 / 3 + 1e-11]), np.array([0.25, 0.75])
    fb, wb = np.array([1 / 7, 1 / 3]), np.array([0.5, 0.5])
    freqs, weights = _product_series((fa, wa), (fb, wb))
    d = np.linspace(0.0, 1.0, 257)
    direct = (wa[:, None] * np.cos(2 * np.pi * fa[:, None] * d)).sum(0) * (
        wb[:, None] * np.cos(2 * np.pi * fb[:, None] * d)
    ).sum(0)
    series = (weights[:, None] * np.cos(2 * np.pi * freqs[:, None] * d)).sum(0)
    np.testing.assert_allclose(series, direct, rtol=0, atol=1e-14)
    assert np.any(freqs == fa[1] + fb[1])  # 2/3 + 1e-11, not rounded to 9 decimals
    assert len(freqs) == 6  # 1/7 and 1/3 appear twice (0 + f and |f - 0|-type pairs) and merge
    np.testing.assert_allclose(weights.sum(), (wa.sum() * wb.sum()), rtol=1e-15)
