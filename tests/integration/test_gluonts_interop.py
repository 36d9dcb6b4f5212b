"""``Forecast.to_gluonts``: GluonTS' evaluators score our samples as our metrics do."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from probforecast.api import Forecast
from probforecast.metrics import build_metric_collection

LEVELS = tuple(np.round(np.arange(1, 10) / 10, 2))


def make_forecast(seed: int = 0, w: int = 4, s: int = 30, q: int = 6, n: int = 3, p: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.normal(3, 1, (w, q, n)) * rng.choice([0.5, 2.0], (w, 1, n))
    truth[1, 2, 0] = np.nan  # unobserved: skipped by both sides
    samples = np.nan_to_num(truth, nan=3.0)[:, None] + rng.normal(0.3, 1, (w, s, q, n))
    history = rng.normal(3, 1, (w, p, n))
    starts = np.array([20, 26, 32, 38])[:w]
    base = pd.Period("2021-03-01 00:00", freq="h")
    index = [pd.period_range(base + int(t), periods=q, freq="h") for t in starts]
    return Forecast(samples, index, ["a", "b", "c"][:n], starts, truth, history)


def ours(forecast: Forecast, metric: str) -> float:
    collection = build_metric_collection(
        metrics=[metric], quantile_levels=LEVELS, quantile_method="rank"
    )
    truth = torch.tensor(forecast.truth)
    mask = ~torch.isnan(truth)
    collection.update(torch.tensor(forecast.samples), torch.nan_to_num(truth), mask=mask)
    return float(collection.compute()[metric])


def evaluate(evaluator, forecast: Forecast, multivariate: bool) -> dict[str, float]:
    forecasts = forecast.to_gluonts(multivariate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg, _ = evaluator(
            iter(forecast.gluonts_targets(multivariate)), iter(forecasts), num_series=len(forecasts)
        )
    return {k: float(v) for k, v in agg.items()}


def test_univariate_forecasts_score_like_our_quantile_crps():
    from gluonts.evaluation import Evaluator

    forecast = make_forecast()
    gluonts_forecasts = forecast.to_gluonts(multivariate=False)
    assert len(gluonts_forecasts) == 4 * 3
    first = gluonts_forecasts[3 + 1]  # window 1, series "b"
    assert first.item_id == "b@2021-03-02 02:00" and first.start_date == forecast.index[1][0]
    np.testing.assert_array_equal(first.samples, forecast.samples[1, :, :, 1])
    targets = forecast.gluonts_targets(multivariate=False)
    assert targets[4].index[-6] == forecast.index[1][0] and len(targets[4]) == 5 + 6
    agg = evaluate(Evaluator(quantiles=LEVELS), forecast, multivariate=False)
    assert agg["mean_wQuantileLoss"] == pytest.approx(ours(forecast, "crps_quantile"), rel=1e-12)


def test_multivariate_forecasts_score_like_our_crps_sum_quantile():
    from gluonts.evaluation import MultivariateEvaluator

    forecast = make_forecast(seed=1)
    forecast.truth[1, 2, 0] = 0.5  # GluonTS' sum aggregate has no mask: keep every value observed
    evaluator = MultivariateEvaluator(quantiles=LEVELS, target_agg_funcs={"sum": np.sum})
    agg = evaluate(evaluator, forecast, multivariate=True)
    assert agg["mean_wQuantileLoss"] == pytest.approx(ours(forecast, "crps_quantile"), rel=1e-12)
    assert agg["m_sum_mean_wQuantileLoss"] == pytest.approx(
        ours(forecast, "crps_sum_quantile"), rel=1e-12
    )
    (frame,) = forecast.gluonts_targets()[:1]
    assert list(frame.columns) == [0, 1, 2] and frame.shape == (11, 3)
