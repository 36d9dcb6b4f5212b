"""The fan chart draws the sample quantiles (np.quantile) on the given time axis."""

from __future__ import annotations

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from probforecast.viz import fan_chart


def test_bands_and_median_are_the_sample_quantiles_on_the_time_axis():
    rng = np.random.default_rng(1)
    p, q, s = 10, 5, 200
    history, truth = rng.normal(size=(p, 2)), rng.normal(size=(q, 2))
    samples = rng.normal(size=(s, q, 2)) * np.arange(1, q + 1)[None, :, None]
    times = pd.date_range("2021-03-01", periods=p + q, freq="h")
    fig = fan_chart(history, truth, samples, ["a", "b"], max_history=4, time_index=times)
    ax = fig.axes[1]
    lo, q25, med, q75, hi = np.quantile(samples[:, :, 1], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    band90, band50 = ax.collections[:2]
    for band, lower, upper in ((band90, lo, hi), (band50, q25, q75)):
        xy = np.asarray(band.get_paths()[0].vertices)  # start, lower edge, end, upper reversed
        np.testing.assert_allclose(xy[1 : q + 1, 1], lower)
        np.testing.assert_allclose(xy[q + 2 : 2 * q + 2, 1][::-1], upper)
    past, future, median = ax.lines[:3]
    np.testing.assert_allclose(median.get_ydata(), med)
    np.testing.assert_allclose(past.get_ydata(), history[-4:, 1])
    assert list(pd.DatetimeIndex(past.get_xdata())) == list(times[p - 4 : p])
    assert list(pd.DatetimeIndex(future.get_xdata())) == list(times[p:])
    plt.close(fig)
    with pytest.raises(ValueError, match="P \\+ Q = 15"):
        fan_chart(history, truth, samples, ["a", "b"], time_index=times[:-1])


@pytest.mark.parametrize(
    ("freq", "p", "q"),
    [
        ("h", 24, 48),  # the hourly windows of 2-4 days that warned
        ("h", 48, 24),
        ("h", 72, 24),
        ("h", 96, 6),
        ("15min", 720, 96),
        ("D", 72, 24),
        ("W", 48, 24),
        ("M", 24, 6),
    ],
)
def test_date_axis_picks_its_ticks_without_a_warning(freq, p, q):
    """Hourly windows of 2-4 days made matplotlib's AutoDateLocator warn on every plot."""
    index = pd.period_range("2020-01-01", periods=p + q, freq=freq).to_timestamp()
    samples = np.random.default_rng(0).normal(size=(10, q, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = fan_chart(np.zeros((p, 2)), np.zeros((q, 2)), samples, ["a", "b"], 96, index)
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
