"""Realism diagnostics of multivariate series (spec-dynlmc §4): correlation drift and the
argmax-lag distribution, for any dataset (synthetic samples or segments of a real series).

Input ``values [T, N]``. Preprocessing: drop channels constant over the series, optionally take
first differences (``transform="diff"``, the default), z-score each channel, and keep at most
``max_channels`` channels chosen at random with ``seed``.

Correlation drift, windows ``b = 1..B`` of length ``w`` (stride ``w``), ``R^(b)`` the window's
Pearson correlation matrix, pairs ``i < k``::

    D_std  = mean_pairs std_b R^(b)_ik                     (per-pair std: ``pair_std``)
    D_step = mean_b mean_pairs |R^(b+1)_ik - R^(b)_ik|
    D_glob = mean_b ||R^(b) - Rbar||_F / sqrt(2 |pairs|)   (Rbar over the whole series)

Argmax lag of a pair: ``r_ik(l) = Pearson(x_i[t], x_k[t + l])`` on the overlap (no wrap-around),
``l* = argmax_{|l| <= l_max} |r_ik(l)|``, ties to the smallest ``|l|``, then the negative lag;
``l* > 0`` means channel ``i`` leads channel ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import wasserstein_distance

Transform = Literal["level", "diff"]


def preprocess(
    values: np.ndarray, transform: Transform = "diff", max_channels: int | None = 64, seed: int = 0
) -> np.ndarray:
    """``[T, N]`` -> ``[T', N']``: non-constant channels, differenced or not, z-scored."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"expected values [T, N] with T >= 3; got shape {x.shape}")
    if transform not in ("level", "diff"):
        raise ValueError(f"transform must be 'level' or 'diff'; got {transform!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("values contain NaN or inf; fill or drop them before the diagnostics")
    if transform == "diff":
        x = np.diff(x, axis=0)
    std = x.std(axis=0)
    x = x[:, std > 1e-12 * max(float(np.abs(x).max()), 1e-300)]
    if max_channels is not None and x.shape[1] > max_channels:
        keep = np.sort(np.random.default_rng(seed).choice(x.shape[1], max_channels, replace=False))
        x = x[:, keep]
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _corr(a: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``a [w, N]``; NaN where a column is constant."""
    a = a - a.mean(axis=0)
    norm = np.sqrt((a**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.T @ a) / np.outer(norm, norm)


@dataclass(frozen=True)
class DriftResult:
    pair_std: np.ndarray  # [pairs] std over windows of each pair's correlation
    d_std: float
    d_step: float
    d_glob: float


def correlation_drift(
    values: np.ndarray,
    window: int = 96,
    transform: Transform = "diff",
    max_channels: int | None = 64,
    seed: int = 0,
) -> DriftResult:
    """Correlation drift of one series ``[T, N]`` (see the module docstring)."""
    x = preprocess(values, transform, max_channels, seed)
    n_win = x.shape[0] // window
    if n_win < 2 or x.shape[1] < 2:
        raise ValueError(
            f"need >= 2 windows of {window} steps and >= 2 non-constant channels; "
            f"got {x.shape[0]} steps, {x.shape[1]} channels"
        )
    upper = np.triu_indices(x.shape[1], k=1)
    mats = np.stack([_corr(x[b * window : (b + 1) * window]) for b in range(n_win)])
    pairs = mats[:, upper[0], upper[1]]  # [B, pairs]
    full = _corr(x)[upper]
    pair_std = np.nanstd(pairs, axis=0)
    glob = np.sqrt(np.nanmean((pairs - full) ** 2, axis=1))  # ||.||_F / sqrt(2 |P|)
    return DriftResult(
        pair_std=pair_std,
        d_std=float(np.nanmean(pair_std)),
        d_step=float(np.nanmean(np.abs(np.diff(pairs, axis=0)))),
        d_glob=float(np.nanmean(glob)),
    )


def _lag_order(max_lag: int) -> np.ndarray:
    """Candidate lags in tie-breaking order: 0, -1, 1, -2, 2, ..."""
    return np.array([0] + [s * k for k in range(1, max_lag + 1) for s in (-1, 1)])


def cross_correlations(x: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``r[l, i, k] = Pearson(x_i[t], x_k[t + l])`` on the overlap for ``l`` in ``_lag_order``;
    ``x [T, N]`` preprocessed. Returns ``(lags [2 l_max + 1], r [2 l_max + 1, N, N])``."""
    lags = _lag_order(max_lag)
    length = x.shape[0]
    if length - max_lag < 3:
        raise ValueError(f"series of {length} steps is too short for max_lag={max_lag}")
    out = np.empty((lags.size, x.shape[1], x.shape[1]))
    for index, lag in enumerate(lags):
        lead = x[max(0, -lag) : length - max(0, lag)]  # x_i[t]
        follow = x[max(0, lag) : length - max(0, -lag)]  # x_k[t + l]
        a = lead - lead.mean(axis=0)
        b = follow - follow.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[index] = (a.T @ b) / np.outer(np.sqrt((a**2).sum(0)), np.sqrt((b**2).sum(0)))
    return lags, out


def argmax_lags(
    values: np.ndarray,
    max_lag: int = 32,
    transform: Transform = "diff",
    max_channels: int | None = 64,
    seed: int = 0,
) -> np.ndarray:
    """``l*`` for every pair ``i < k`` of one series ``[T, N]`` (see the module docstring)."""
    x = preprocess(values, transform, max_channels, seed)
    lags, r = cross_correlations(x, max_lag)
    upper = np.triu_indices(x.shape[1], k=1)
    score = np.nan_to_num(np.abs(r[:, upper[0], upper[1]]), nan=-1.0)  # [lags, pairs]
    return lags[np.argmax(score, axis=0)]  # first maximum = tie-breaking order


def lag_histogram(lags: np.ndarray, max_lag: int = 32) -> np.ndarray:
    """Normalised histogram ``[2 l_max + 1]`` over ``-l_max..l_max``."""
    counts = np.bincount(np.asarray(lags, dtype=np.int64) + max_lag, minlength=2 * max_lag + 1)
    return counts / max(counts.sum(), 1)


def lag_summary(lags: np.ndarray, reference: np.ndarray | None = None) -> dict[str, float]:
    """``P(l* = 0)``, ``mean |l*|`` and (with ``reference`` lags) the 1-Wasserstein distance."""
    lags = np.asarray(lags)
    out = {"p_zero": float(np.mean(lags == 0)), "mean_abs": float(np.mean(np.abs(lags)))}
    if reference is not None:
        out["wasserstein"] = float(wasserstein_distance(lags, np.asarray(reference)))
    return out


def segments(values: np.ndarray, length: int, max_segments: int | None = None) -> list[np.ndarray]:
    """Non-overlapping segments ``[length, N]`` of a long series ``[T, N]`` (evenly spread when
    ``max_segments`` caps them), so that real data is compared sample by sample with synthetic
    samples of the same length."""
    count = values.shape[0] // length
    if count < 1:
        raise ValueError(
            f"series of {values.shape[0]} steps is shorter than one segment ({length})"
        )
    starts = np.arange(count) * length
    if max_segments is not None and count > max_segments:
        starts = starts[np.linspace(0, count - 1, max_segments).astype(int)]
    return [values[s : s + length] for s in starts]
