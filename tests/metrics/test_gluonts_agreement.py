"""GluonTS-comparable scores: ``quantile_method="rank"`` and ``crps_sum_quantile`` reproduce
GluonTS' ``MultivariateEvaluator`` (``mean_wQuantileLoss``, per-dimension values and
``m_sum_mean_wQuantileLoss``, the CRPS-sum of GluonTS-style tables) on the same samples."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from probforecast.metrics import build_metric_collection
from probforecast.metrics.functional import sample_quantiles

LEVELS = tuple(np.round(np.arange(1, 10) / 10, 2))


def _forecast(seed: int = 0, b: int = 6, s: int = 50, q: int = 5, n: int = 3):
    rng = np.random.default_rng(seed)
    target = rng.normal(2, 1, (b, q, n)) * rng.choice([0.5, 3.0], (b, 1, 1))
    samples = target[:, None] + rng.normal(0.2, 1, (b, s, q, n))
    return target, samples


def _gluonts_metrics(target: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    from gluonts.evaluation import MultivariateEvaluator
    from gluonts.model.forecast import SampleForecast

    b, q, n = target.shape
    series, forecasts = [], []
    start = pd.Period("2020-01-01", freq="D")
    for w in range(b):
        index = pd.period_range(start + 10 * w, periods=q + 4, freq="D")
        history = np.full((4, n), 1.0)
        series.append(pd.DataFrame(np.concatenate([history, target[w]]), index=index))
        forecasts.append(SampleForecast(samples=samples[w], start_date=index[4]))
    evaluator = MultivariateEvaluator(quantiles=LEVELS, target_agg_funcs={"sum": np.sum})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg, _ = evaluator(iter(series), iter(forecasts), num_series=b)
    return {k: float(v) for k, v in agg.items()}


def test_rank_quantiles_are_gluonts_sample_forecast_quantiles():
    from gluonts.model.forecast import SampleForecast

    for s in (4, 6, 50, 101):
        x = torch.randn(1, s, 3, 2, dtype=torch.float64)
        levels = (0.1, 0.25, 0.5, 0.7, 0.9)
        ours = sample_quantiles(x, levels, method="rank")
        forecast = SampleForecast(samples=x[0].numpy(), start_date=pd.Period("2020-01", freq="D"))
        for i, level in enumerate(levels):
            np.testing.assert_array_equal(ours[i, 0].numpy(), forecast.quantile(level))


def test_crps_quantile_and_crps_sum_quantile_equal_gluonts_evaluator():
    target, samples = _forecast()
    reference = _gluonts_metrics(target, samples)
    x, y = torch.tensor(samples), torch.tensor(target)
    collection = build_metric_collection(
        metrics=["crps_quantile", "crps_sum_quantile"],
        quantile_levels=LEVELS,
        quantile_method="rank",
    )
    collection.update(x, y)
    got = {k: float(v) for k, v in collection.compute().items()}
    assert got["crps_quantile"] == pytest.approx(reference["mean_wQuantileLoss"], rel=1e-12)
    assert got["crps_sum_quantile"] == pytest.approx(
        reference["m_sum_mean_wQuantileLoss"], rel=1e-12
    )
    for dim in range(target.shape[-1]):
        one = build_metric_collection(
            metrics=["crps_quantile"], quantile_levels=LEVELS, quantile_method="rank"
        )
        one.update(x[..., dim : dim + 1], y[..., dim : dim + 1])
        assert float(one.compute()["crps_quantile"]) == pytest.approx(
            reference[f"{dim}_mean_wQuantileLoss"], rel=1e-12
        )
    linear = build_metric_collection(metrics=["crps_sum_quantile"], quantile_levels=LEVELS)
    linear.update(x, y)
    assert float(linear.compute()["crps_sum_quantile"]) != pytest.approx(
        reference["m_sum_mean_wQuantileLoss"], rel=1e-6
    )


def test_unknown_quantile_method_is_refused():
    with pytest.raises(ValueError, match="quantile_method must be one of"):
        build_metric_collection(metrics=["crps_quantile"], quantile_method="nearest")
