"""Fan charts: history, truth, median and central 50 % / 90 % intervals of the samples."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def fan_chart(
    history: np.ndarray,
    truth: np.ndarray,
    samples: np.ndarray,
    titles: list[str],
    max_history: int | None = None,
):
    """One panel per series.

    Args:
        history: ``[P, K]`` past values. truth: ``[Q, K]``. samples: ``[S, Q, K]``.
        titles: ``K`` panel titles. max_history: show at most this many history steps.

    Returns:
        a matplotlib ``Figure``.
    """
    k = history.shape[1]
    if max_history is not None:
        history = history[-max_history:]
    p, q = history.shape[0], truth.shape[0]
    cols = min(k, 2)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.4 * rows), squeeze=False)
    x_past, x_future = np.arange(p), np.arange(p, p + q)
    quant = np.nanquantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)  # [5, Q, K]
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.axis("off")
            continue
        ax.plot(x_past, history[:, i], color="black", lw=1)
        ax.plot(x_future, truth[:, i], color="black", lw=1, ls="--", label="truth")
        ax.fill_between(
            x_future, quant[0, :, i], quant[4, :, i], color="C0", alpha=0.2, label="90%"
        )
        ax.fill_between(
            x_future, quant[1, :, i], quant[3, :, i], color="C0", alpha=0.4, label="50%"
        )
        ax.plot(x_future, quant[2, :, i], color="C0", lw=1.2, label="median")
        ax.set_title(titles[i], fontsize=9)
        ax.axvline(p - 0.5, color="grey", lw=0.5)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
