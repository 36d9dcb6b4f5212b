"""Exact Gaussian-process prior samples of KernelSynth kernels on a uniform grid, fast.

The naive sampler (Chronos, TimePFN) builds the dense ``[n, n]`` covariance of every latent and
eigendecomposes it: ``O(n^3)`` per latent. ``GPSampler`` draws from *the same Gaussian law* by
exact algebra instead:

1. **Sums split.** The composite kernel is expanded into a sum of products of bank leaves
   (``kernels.expand``). A sum of kernels is the covariance of a sum of *independent* GPs, so
   each product term is sampled on its own and the draws are added.
2. **Non-stationary and periodic factors become features.** In a term
   ``c * prod_i (s_i^2 + x x') * prod_j per_j(d) * core(d)``:

   - ``prod_i (s_i^2 + x x') = sum_q a_q (x x')^q`` (polynomial in ``x x'``, ``a_q >= 0``);
   - each ``ExpSineSquared`` has the exact Jacobi-Anger expansion
     ``exp(-2 sin^2(pi d/p)/l^2) = sum_k w_k cos(2 pi k d / p)``, ``w_0 = e^{-z} I_0(z)``,
     ``w_k = 2 e^{-z} I_k(z)``, ``z = 1/l^2`` (truncated where the tail mass is < 1e-16); products
     of such series are again cosine series ``sum_f b_f cos(2 pi f d)`` with ``b_f >= 0``;
   - then ``y(x) = sqrt(c) sum_q sqrt(a_q) x^q sum_f sqrt(b_f) [cos(2 pi f x) g_qf(x) +
     sin(2 pi f x) h_qf(x)]`` with ``g, h`` iid ``GP(core)`` has exactly the term's covariance
     (``cos a cos b + sin a sin b = cos(a - b)``).
3. **The stationary core** (a product of RBF / RationalQuadratic / White leaves; ``1`` if none)
   is sampled by circulant embedding: the first row ``c_u = core(u h)``, ``u = 0..m/2``, of a
   symmetric circulant of size ``m >= 2(n-1)`` has eigenvalues ``lambda = FFT(c)``; with
   ``lambda >= 0`` the real and imaginary parts of ``FFT(sqrt(lambda/m) z)``, ``z`` complex
   standard normal, are two independent exact draws. **Exactness check:** negative eigenvalues
   are clipped, which perturbs every covariance entry by at most ``sum_{lambda<0} |lambda| / m``;
   the embedding is accepted only if that bound is ``<= tol * core(0)`` (``m`` is doubled up to
   ``max_embedding``), else the core's dense Toeplitz matrix is factorized by ``eigh`` and cached
   by its expression key. A core containing ``White`` is diagonal: iid normals.

Each term uses ``(#a_q) * (2 #f - 1)`` core draws (one FFT per pair); a term whose feature count
exceeds ``max_features`` is factorized densely (cached by key). ``dense_gp_sample`` is the naive
reference the tests and the benchmark compare against.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.linalg import toeplitz
from scipy.linalg.lapack import dpstrf
from scipy.special import ive

from probforecast.data.synthetic.kernels import Expr, Leaf, expand, kernel_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grid:
    """``x_u = start + u * step`` for ``u = 0..n-1``."""

    n: int
    start: float
    step: float

    @property
    def x(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.n)

    @classmethod
    def from_points(cls, x: np.ndarray) -> Grid:
        x = np.asarray(x, np.float64)
        if x.ndim != 1 or x.size < 2:
            raise ValueError(f"expected a 1-D grid of >= 2 points; got shape {x.shape}")
        step = (x[-1] - x[0]) / (x.size - 1)
        if step <= 0 or np.max(np.abs(np.diff(x) - step)) > 1e-9 * abs(step):
            raise ValueError("the GP grid must be uniform and increasing (x_u = x_0 + u h)")
        return cls(x.size, float(x[0]), float(step))


def jacobi_anger(period: float, length_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Cosine series of ExpSineSquared: frequencies ``k / period`` and weights ``w_k >= 0`` with
    ``sum_k w_k = k(0) = 1``; computed until the weights fall below 1e-300."""
    z = 1.0 / length_scale**2
    order = np.arange(0, int(4 * z + 60))
    weights = ive(order, z) * np.where(order == 0, 1.0, 2.0)
    keep = weights > 1e-300
    return order[keep] / period, weights[keep]


def _prune(freqs: np.ndarray, weights: np.ndarray, budget: float):
    """Drop the smallest weights whose sum is ``<= budget`` (a bound on the kernel change,
    since ``|cos| <= 1``). Returns the kept series and the dropped mass."""
    order = np.argsort(weights)
    dropped = np.cumsum(weights[order]) <= budget
    keep = np.sort(order[~dropped])
    return freqs[keep], weights[keep], float(weights[order[dropped]].sum())


def _product_series(a, b):
    """``sum_f a_f cos(2 pi f d) * sum_g b_g cos(2 pi g d)`` as one cosine series (frequencies
    ``f + g`` and ``|f - g|`` with half the weight; equal frequencies merged)."""
    (fa, wa), (fb, wb) = a, b
    freqs = np.concatenate(
        [(fa[:, None] + fb[None, :]).ravel(), np.abs(fa[:, None] - fb[None, :]).ravel()]
    )
    weights = np.tile(0.5 * (wa[:, None] * wb[None, :]).ravel(), 2)
    # frequencies equal to 9 decimals are merged; each keeps an exact (unrounded) value
    _, first, inverse = np.unique(np.round(freqs, 9), return_index=True, return_inverse=True)
    return freqs[first], np.bincount(inverse, weights=weights)


# rough single-thread costs (seconds) used to pick a route: per grid point of one feature
# (trig + multiply-add), per ``m log2 m`` of an FFT, per ``n^3`` of a dense pivoted Cholesky
_FEATURE_COST, _FFT_COST, _DENSE_COST = 2.5e-8, 2e-9, 7e-11


def _trig_sum(freqs: np.ndarray, coeffs: np.ndarray, grid: Grid, block: int = 32) -> np.ndarray:
    """``S[s, u] = sum_f coeffs[f, s] exp(2 pi i f x_u)`` on the uniform grid, ``[num, n]``.

    With ``u = b B + v``: ``exp(2 pi i f x_u) = exp(2 pi i f (x_0 + b B h)) exp(2 pi i f v h)``,
    so only ``F (n/B + B)`` exponentials are evaluated (each directly, no recurrence) and the sum
    is a complex matrix product."""
    n_blocks = -(-grid.n // block)
    f = freqs[:, None]
    outer = np.exp(2j * np.pi * f * (grid.start + grid.step * block * np.arange(n_blocks)))
    inner = np.exp(2j * np.pi * f * grid.step * np.arange(block))  # [F, B]
    out = np.einsum("fs,fb,fv->sbv", coeffs, outer, inner, optimize=True)
    return out.reshape(coeffs.shape[1], -1)[:, : grid.n]


def _feature_rows(x, coef: float, poly, freqs, weights) -> np.ndarray:
    """Rows ``sqrt(c a_q b_f) x^q cos(2 pi f x)`` and ``... sin(2 pi f x)`` (``f > 0``) for every
    ``a_q > 0``: the term's covariance is ``sum_rows row(x) row(x')`` times the core."""
    phase = np.exp(2j * np.pi * freqs[:, None] * x[None, :])  # [F, n]
    amp = np.sqrt(coef * weights)[:, None]
    trig = np.concatenate([amp * phase.real, (amp * phase.imag)[freqs != 0.0]])
    rows = [np.sqrt(a_q) * x**q * trig for q, a_q in enumerate(poly) if a_q > 0.0]
    return np.concatenate(rows)


def _term_matrix(term: list[Leaf], grid: Grid) -> np.ndarray:
    """Dense covariance of a product term: the Toeplitz matrix of its stationary leaves (one row
    of ``n`` kernel values) times ``s^2 + x x'`` for each DotProduct."""
    x = grid.x
    row = np.ones(grid.n)
    for leaf in term:
        if leaf.stationary:
            row = row * leaf.stationary_value(grid.step * np.arange(grid.n))
    cov = toeplitz(row)
    for leaf in term:
        if not leaf.stationary:
            cov *= leaf.params[0] ** 2 + np.outer(x, x)
    return cov


def pivoted_cholesky(cov: np.ndarray, tol: float) -> np.ndarray:
    """``F [n, r]`` with ``F F^T = cov - S``, ``S`` PSD with ``max diag S <= tol`` (so
    ``|S_uv| <= tol``). Falls back to ``eigh`` (dropping eigenvalues summing to ``<= tol``) when
    LAPACK's ``dpstrf`` factors nothing (rank 0: no positive diagonal entry; it takes the first
    pivot whenever the largest diagonal is positive, even below ``tol``); a Schur complement
    made indefinite by rounding ends the factorisation as rank-deficient instead."""
    chol, piv, rank, info = dpstrf(np.array(cov, dtype=np.float64, order="F"), tol=tol, lower=1)
    if info >= 0 and rank > 0:
        factor = np.empty((cov.shape[0], rank))
        factor[piv - 1] = np.tril(chol[:, :rank])
        return factor
    lam, vec = np.linalg.eigh(cov)
    lam = np.clip(lam, 0.0, None)
    dropped = np.cumsum(lam) <= tol
    return np.ascontiguousarray(vec[:, ~dropped] * np.sqrt(lam[~dropped]))


def dense_gp_sample(expr: Expr, x: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """The naive exact sampler: ``eigh`` of the dense covariance, negative eigenvalues clipped.
    Returns ``[num, n]``."""
    cov = kernel_matrix(expr, np.asarray(x, np.float64))
    lam, vec = np.linalg.eigh(cov)
    factor = vec * np.sqrt(np.clip(lam, 0.0, None))
    return (factor @ rng.standard_normal((cov.shape[0], num))).T


class GPSampler:
    """Fast exact sampler (see the module docstring). Keeps per-process caches of circulant
    spectra and low-rank dense factors keyed by (expression, grid); ``stats`` counts the routes.

    Args:
        tol: accepted perturbation of any covariance entry, relative to the term's variance scale:
            the clipped circulant mass, the pruned cosine-series mass and the dropped eigenvalue
            mass of a dense factor each stay below it.
        max_embedding: largest circulant size tried before the core is factorized densely.
        cache_mib: memory budget of the cached dense factors (``[n, r]`` float64, LRU).
    """

    def __init__(self, tol: float = 1e-10, max_embedding: int = 1 << 19, cache_mib: int = 256):
        self.tol, self.max_embedding, self.cache_bytes = tol, max_embedding, cache_mib << 20
        self._spectra: dict[tuple, np.ndarray | None] = {}
        self._dense: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._dense_bytes = 0
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------ public
    def sample(self, expr: Expr, x: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
        """``num`` independent draws ``[num, n]`` of ``GP(0, expr)`` at the uniform grid ``x``."""
        grid = Grid.from_points(x)
        out = np.zeros((num, grid.n))
        for term in expand(expr):
            out += self._sample_term(term, grid, num, rng)
        return out

    # ------------------------------------------------------------------ one product term
    def _sample_term(self, term: list[Leaf], grid: Grid, num: int, rng) -> np.ndarray:
        coef, poly = 1.0, np.ones(1)
        periodic: list[Leaf] = []
        core: list[Leaf] = []
        for leaf in term:
            if leaf.kind == "Constant":
                coef *= leaf.params[0]
            elif leaf.kind == "DotProduct":
                poly = np.convolve(poly, [leaf.params[0] ** 2, 1.0])  # a_q of (x x')^q
            elif leaf.kind == "ExpSineSquared":
                periodic.append(leaf)
            else:
                core.append(leaf)
        if coef == 0.0:
            return np.zeros((num, grid.n))
        if any(leaf.kind == "White" for leaf in core):  # diagonal term: var(x) = k(x, x)
            self.stats["white"] += 1
            var = coef * np.polyval(poly[::-1], grid.x**2)  # every ExpSineSquared(0) = 1
            var = var * np.prod([leaf.stationary_value(np.zeros(1))[0] for leaf in core])
            return np.sqrt(var) * rng.standard_normal((num, grid.n))
        # a feature costs ~n/8 grid-point operations with a scalar core (_trig_sum), ~n otherwise
        per_draw = self._core_cost(core, grid) + _FEATURE_COST * grid.n / (8 if not core else 1)
        dense_cost = _DENSE_COST * grid.n**3 + _FEATURE_COST * grid.n**2 * len(term)
        freqs, weights = np.zeros(1), np.ones(1)
        for leaf in periodic:
            freqs, weights = _product_series((freqs, weights), jacobi_anger(*leaf.params))
            freqs, weights, _ = _prune(freqs, weights, self.tol / 8 * weights.sum())
            if 2 * len(freqs) * len(poly) * per_draw > dense_cost and len(term) > 1:
                self.stats["dense_term"] += 1
                return self._dense_draws(("term", *map(str, term)), term, grid, num, rng)
        n_draws = int((poly > 0).sum()) * (2 * len(freqs) - int(freqs[0] == 0.0))
        self.stats["features"] += 1
        if not core:  # scalar core draws: y = sum_q sqrt(a_q) x^q Re sum_f c_qf e^{2 pi i f x}
            out = np.zeros((num, grid.n))
            amp = np.sqrt(coef * weights)[:, None]
            for q, a_q in enumerate(poly):
                if a_q > 0.0:
                    z = rng.standard_normal((2, len(freqs), num))
                    c = amp * (z[0] - 1j * np.where(freqs[:, None] == 0.0, 0.0, z[1]))
                    out += np.sqrt(a_q) * grid.x**q * _trig_sum(freqs, c, grid).real
            return out
        features = _feature_rows(grid.x, coef, poly, freqs, weights)  # [n_draws, n]
        assert features.shape[0] == n_draws
        out = np.zeros((num, grid.n))
        block = max(1, (1 << 21) // (num * grid.n))  # features per einsum (bounds memory)
        for lo in range(0, n_draws, block):
            rows = features[lo : lo + block]
            draws = self._core_draws(core, grid, rows.shape[0] * num, rng)
            out += np.einsum("ku,ksu->su", rows, draws.reshape(rows.shape[0], num, grid.n))
        return out

    # ------------------------------------------------------------------ stationary core
    def _core_route(self, core: list[Leaf], grid: Grid) -> tuple[str, np.ndarray | None]:
        """``("circulant", sqrt(lambda/m))`` when the embedding passes the exactness check at a
        size ``m <= 8 n`` (cheaper than a dense factor), else ``("dense", None)``."""
        cache_key = (tuple(sorted(leaf.label for leaf in core)), grid.n, grid.step)
        if cache_key not in self._spectra:
            root = self._embedding(core, grid)
            self._spectra[cache_key] = (
                root if root is not None and root.size <= 8 * grid.n else None
            )
        root = self._spectra[cache_key]
        return ("circulant", root) if root is not None else ("dense", None)

    def _core_cost(self, core: list[Leaf], grid: Grid) -> float:
        """Rough cost (seconds) of one core draw, to choose between features and a dense term."""
        if not core:
            return 0.0
        route, root = self._core_route(core, grid)
        if route == "circulant":
            assert root is not None  # _core_route pairs "circulant" with its spectrum
            return _FFT_COST * root.size * np.log2(root.size)
        factor = self._dense_factor(("core", *sorted(map(str, core))), core, grid)
        return _FEATURE_COST * factor.size

    def _core_draws(self, core: list[Leaf], grid: Grid, count: int, rng) -> np.ndarray:
        """``count`` iid draws ``[count, n]`` of ``GP(prod core)`` (stationary)."""
        if not core:
            return np.broadcast_to(rng.standard_normal((count, 1)), (count, grid.n))
        route, root = self._core_route(core, grid)
        if route == "dense":
            self.stats["dense_core"] += 1
            return self._dense_draws(("core", *sorted(map(str, core))), core, grid, count, rng)
        self.stats["circulant"] += 1
        assert root is not None  # _core_route pairs "circulant" with its spectrum
        m, out, done = root.size, np.empty((count, grid.n)), 0
        chunk = max(1, (1 << 22) // m)  # pairs per FFT batch (bounds memory at ~64 MiB)
        while done < count:
            pairs = min(chunk, (count - done + 1) // 2)
            z = rng.standard_normal((pairs, m)) + 1j * rng.standard_normal((pairs, m))
            y = np.fft.fft(root * z, axis=-1)[:, : grid.n]
            both = np.concatenate([y.real, y.imag])[: count - done]
            out[done : done + both.shape[0]] = both
            done += both.shape[0]
        return out

    def _embedding(self, core: list[Leaf], grid: Grid) -> np.ndarray | None:
        """``sqrt(max(lambda, 0) / m)`` of the smallest accepted embedding, or None."""
        m = 1 << int(np.ceil(np.log2(max(2 * (grid.n - 1), 2))))
        while m <= self.max_embedding:
            lags = grid.step * np.arange(m // 2 + 1)
            row = np.prod([leaf.stationary_value(lags) for leaf in core], axis=0)
            lam = np.fft.rfft(np.concatenate([row, row[-2:0:-1]])).real
            full = np.concatenate([lam, lam[-2:0:-1]])  # all m eigenvalues
            bound = -full[full < 0].sum() / m
            if bound <= self.tol * row[0]:
                return np.sqrt(np.clip(full, 0.0, None) / m)
            m *= 2
        log.debug("circulant embedding rejected for %s", [str(c) for c in core])
        return None

    def _dense_factor(self, cache_key, term: list[Leaf], grid: Grid) -> np.ndarray:
        """``F [n, r]`` with ``F F^T`` = the term's covariance ``K`` up to a PSD residual whose
        diagonal, hence every entry, is ``<= tol * max diag K``: LAPACK's pivoted Cholesky
        (``dpstrf``, rank-revealing, ``O(n r^2)``), stopped at that tolerance."""
        full_key = (cache_key, grid.n, grid.start, grid.step)
        factor = self._dense.get(full_key)
        if factor is not None:
            self._dense.move_to_end(full_key)
            return factor
        cov = _term_matrix(term, grid)
        factor = pivoted_cholesky(cov, self.tol * max(float(np.max(np.diag(cov))), 1e-300))
        self._dense[full_key] = factor
        self._dense_bytes += factor.nbytes
        while self._dense_bytes > self.cache_bytes and len(self._dense) > 1:
            self._dense_bytes -= self._dense.popitem(last=False)[1].nbytes
        return factor

    def _dense_draws(self, cache_key, term: list[Leaf], grid: Grid, count: int, rng) -> np.ndarray:
        factor = self._dense_factor(cache_key, term, grid)
        return (factor @ rng.standard_normal((factor.shape[1], count))).T
