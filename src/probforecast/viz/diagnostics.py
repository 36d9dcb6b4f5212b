"""Figures of the realism diagnostics (``probforecast.data.diagnostics``) and of DynLMC samples.
Numpy in, matplotlib ``Figure`` out."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def correlation_drift_chart(pair_std: dict[str, np.ndarray], title: str = "Correlation drift"):
    """Box plot per dataset of the per-pair std over windows of the window correlations."""
    if not pair_std:
        raise ValueError("pair_std is empty: expected {dataset name: per-pair std array}")
    names = list(pair_std)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 3.6))
    data = [np.asarray(pair_std[n])[np.isfinite(pair_std[n])] for n in names]
    ax.boxplot(data, showfliers=False)
    ax.scatter(
        np.arange(1, len(names) + 1),
        [d.mean() for d in data],
        marker="D",
        color="C3",
        zorder=3,
        label="mean ($D_{std}$)",
    )
    ax.set_xticks(np.arange(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel("std over windows of $R^{(b)}_{ik}$")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def lag_histogram_chart(
    histograms: dict[str, np.ndarray], max_lag: int, title: str = "Argmax-lag distribution"
):
    """Small multiples: the normalised histogram of ``l*`` per dataset (log scale)."""
    if not histograms:
        raise ValueError("histograms is empty: expected {dataset name: histogram}")
    names = list(histograms)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.0 * cols, 2.2 * rows), sharex=True, sharey=True, squeeze=False
    )
    lags = np.arange(-max_lag, max_lag + 1)
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.bar(lags, np.maximum(histograms[name], 1e-4), width=1.0, color="C0")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("$\\ell^*$")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def dynlmc_sample_chart(sample, channels: int = 3, title: str = ""):
    """A DynLMC sample: a few channels (top) and the mixing weights ``alpha_0j(t)`` of the
    first channel (bottom, stacked), with regime switches marked when there are any."""
    series, weights = np.asarray(sample.series), np.asarray(sample.weights)
    steps = np.arange(series.shape[1])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for i in range(min(channels, series.shape[0])):
        x = series[i]
        top.plot(steps, (x - x.mean()) / (x.std() + 1e-12) + 3 * i, lw=0.8, label=f"channel {i}")
    top.set_ylabel("standardised (offset)")
    top.legend(loc="upper right", fontsize=7, ncol=channels)
    bottom.stackplot(steps, weights[0], linewidth=0)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("$\\alpha_{0j}(t)$")
    bottom.set_xlabel("t")
    if getattr(sample, "regimes", None) is not None:
        for t in np.flatnonzero(np.diff(sample.regimes)) + 1:
            for ax in (top, bottom):
                ax.axvline(t, color="k", lw=0.6, ls="--", alpha=0.6)
    params = sample.params
    info = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
        if k in ("preset", "num_latents", "rho", "tau_max", "n_regimes") and v is not None
    )
    fig.suptitle(title or info, fontsize=10)
    fig.tight_layout()
    return fig
