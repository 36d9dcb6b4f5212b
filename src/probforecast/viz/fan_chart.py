"""Fan charts: history, truth, median and central 50 % / 90 % intervals of the samples."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np


def fan_chart(
    history: np.ndarray,
    truth: np.ndarray,
    samples: np.ndarray,
    titles: list[str],
    max_history: int | None = None,
    time_index=None,
):
    """One panel per series.

    Args:
        history: ``[P, K]`` past values. truth: ``[Q, K]``. samples: ``[S, Q, K]``.
        titles: ``K`` panel titles. max_history: show at most this many history steps.
        time_index: optional ``P + Q`` x values (e.g. a ``DatetimeIndex``) of the full history
            and horizon; default step numbers ``0 .. P + Q - 1`` of the shown part.

    Returns:
        a matplotlib ``Figure``.
    """
    k = history.shape[1]
    if time_index is not None and len(time_index) != history.shape[0] + truth.shape[0]:
        raise ValueError(
            f"time_index must have P + Q = {history.shape[0] + truth.shape[0]} entries; "
            f"got {len(time_index)}"
        )
    if max_history is not None:
        shown = min(max_history, history.shape[0])
        time_index = None if time_index is None else time_index[history.shape[0] - shown :]
        history = history[-shown:]
    p, q = history.shape[0], truth.shape[0]
    cols = min(k, 2)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.4 * rows), squeeze=False)
    x = np.arange(p + q) if time_index is None else np.asarray(time_index)
    x_past, x_future = x[:p], x[p:]
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
        ax.axvline(x_future[0], color="grey", lw=0.5)
        if np.issubdtype(x.dtype, np.datetime64):
            locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
