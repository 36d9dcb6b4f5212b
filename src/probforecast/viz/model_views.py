"""Plots of what a model learned, for the ``diagnostic_figures`` protocol (see
``probforecast.callbacks.ModelViews``): correlation / covariance heatmaps, mixture weights
over the horizon, a predicted scale over the horizon. Pure numpy in, matplotlib ``Figure`` out.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _check(array: np.ndarray, ndim: int, name: str, shape: str) -> np.ndarray:
    array = np.asarray(array, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {shape}; got shape {array.shape}")
    return array


def matrix_heatmaps(
    matrices: np.ndarray,
    titles: list[str],
    suptitle: str = "",
    symmetric: bool = True,
    labels: list[str] | None = None,
):
    """One heatmap per matrix, side by side.

    Args:
        matrices: ``[K, D, D]`` (e.g. the GLS temporal correlation ``C_t`` at K steps, or a
            covariance ``Sigma``). titles: ``K`` panel titles.
        symmetric: colour scale centred on 0 (``[-m, m]``, ``m = max |entry|``; ``[-1, 1]`` for
            correlations); else ``[min, max]``.
        labels: optional ``D`` tick labels (e.g. series names).

    Returns:
        a ``Figure``; ``fig.axes[k].images[0].get_array()`` is ``matrices[k]``.
    """
    matrices = _check(matrices, 3, "matrices", "[K, D, D]")
    k = matrices.shape[0]
    if k < 1:
        raise ValueError(f"matrices must be [K, D, D] with K >= 1; got shape {matrices.shape}")
    if len(titles) != k:
        raise ValueError(f"need {k} titles for {k} matrices; got {len(titles)}")
    fig, axes = plt.subplots(1, k, figsize=(3.4 * k + 0.8, 3.2), squeeze=False)
    if symmetric:
        bound = float(np.nanmax(np.abs(matrices))) or 1.0
        vmin, vmax, cmap = -bound, bound, "RdBu_r"
    else:
        vmin, vmax, cmap = float(np.nanmin(matrices)), float(np.nanmax(matrices)), "viridis"
    image = None
    for ax, matrix, title in zip(axes[0], matrices, titles, strict=True):
        image = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        if labels is not None:
            ticks = np.arange(len(labels))
            ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
            ax.set_yticks(ticks, labels, fontsize=6)
    assert image is not None  # k >= 1 panels
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def mixture_weights_chart(weights: np.ndarray, labels: list[str], title: str = ""):
    """Stacked area of mixture weights over the horizon.

    Args:
        weights: ``[Q, M]`` non-negative weights per horizon step (rows sum to 1).
        labels: ``M`` component names (e.g. ``"SE l=1.0"``, ``"identity"``).

    Returns:
        a ``Figure`` with one stacked area per component (``fig.axes[0].collections``).
    """
    weights = _check(weights, 2, "weights", "[Q, M]")
    if weights.shape[1] != len(labels):
        raise ValueError(f"need {weights.shape[1]} labels for [Q, M] weights; got {len(labels)}")
    fig, ax = plt.subplots(figsize=(6, 2.6))
    steps = np.arange(1, weights.shape[0] + 1)
    ax.stackplot(steps, weights.T, labels=labels, alpha=0.85)
    ax.set_xlim(steps[0], steps[-1] if len(steps) > 1 else steps[0] + 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def horizon_lines(values: np.ndarray, titles: list[str], ylabel: str, suptitle: str = ""):
    """One panel per series of a per-step quantity over the horizon (e.g. VolDy-VAE's predicted
    ``sigma``), optionally with several lines per panel.

    Args:
        values: ``[Q, K]`` or ``[L, Q, K]`` (``L`` lines, e.g. samples or quantiles).
        titles: ``K`` panel titles. ylabel: the y-axis label.

    Returns:
        a ``Figure``; panel ``k`` holds ``L`` lines with ydata ``values[:, :, k]``.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        values = values[None]
    values = _check(values, 3, "values", "[Q, K] or [L, Q, K]")
    k = values.shape[2]
    if len(titles) != k:
        raise ValueError(f"need {k} titles for {k} series; got {len(titles)}")
    cols = min(k, 2)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 2.2 * rows), squeeze=False)
    steps = np.arange(1, values.shape[1] + 1)
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.axis("off")
            continue
        for line in values[:, :, i]:
            ax.plot(steps, line, color="C1", lw=1, alpha=1.0 if values.shape[0] == 1 else 0.4)
        ax.set_title(titles[i], fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def gls_views(corr: np.ndarray, weights=None, lengthscales: list[float] | None = None) -> dict:
    """The GLS forecasters' views (``LowRankARForecaster.diagnostic_figures``).

    Args:
        corr: ``[Q, D, D]`` temporal correlation ``C_t`` at each horizon step.
        weights: optional ``[Q, M]`` kernel-mixture weights (``M - 1`` SE kernels + identity).
        lengthscales: the ``M - 1`` SE lengthscales (legend labels).

    Returns:
        ``{"gls_correlation": heatmaps of C at the first and last step}`` plus
        ``"gls_mixture_weights"`` when ``weights`` is given.
    """
    corr = _check(corr, 3, "corr", "[Q, D, D]")
    q = corr.shape[0]
    steps = [0] if q == 1 else [0, q - 1]
    views = {
        "gls_correlation": matrix_heatmaps(
            corr[steps],
            [f"C_t at horizon step {s + 1}" for s in steps],
            suptitle=f"learned temporal correlation (D = {corr.shape[1]})",
        )
    }
    if weights is not None:
        weights = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights)
        labels = [f"SE l={scale:.2f}" for scale in lengthscales or []] + ["identity"]
        views["gls_mixture_weights"] = mixture_weights_chart(
            weights, labels, "kernel-mixture weights of C_t over the horizon"
        )
    return views
