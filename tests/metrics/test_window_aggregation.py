"""``aggregation="window_mean"`` of the ratio metrics against independent NumPy references:
ProbTS' evaluator (per-window quantile-loss CRPS and ND, then the batch-size-weighted mean of
per-batch means) and properscoring's exact CRPS per window."""

from __future__ import annotations

import numpy as np
import properscoring as ps
import pytest
import torch

from probforecast.metrics import (
    CRPS,
    MSE,
    NMAE,
    NRMSE,
    CRPSQuantile,
    CRPSSum,
    build_metric_collection,
)

LEVELS = tuple(np.arange(1, 20) / 20)


def _probts_window(target: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    """ProbTS ``Evaluator.get_sequence_metrics`` for one window (target [Q,N], samples [S,Q,N])."""
    abs_sum = np.abs(target).sum()
    median = np.quantile(samples, 0.5, axis=0)
    losses = []
    for q in LEVELS:
        fq = np.quantile(samples, q, axis=0)
        losses.append(2 * np.sum(np.abs((fq - target) * ((target <= fq) - q))) / abs_sum)
    mean = samples.mean(0)
    return {
        "crps_quantile": float(np.mean(losses)),
        "nmae": np.abs(target - median).sum() / abs_sum,
        "nrmse": np.sqrt(np.mean((mean - target) ** 2)) / np.abs(target).mean(),
        "mse": np.mean((mean - target) ** 2),
    }


def _probts_batched(target: np.ndarray, samples: np.ndarray, batch: int) -> dict[str, float]:
    """ProbTS' test epoch: per-batch mean of window metrics, weighted by the batch sizes."""
    totals: dict[str, float] = {}
    for b0 in range(0, len(target), batch):
        rows = [
            _probts_window(t, x)
            for t, x in zip(target[b0 : b0 + batch], samples[b0 : b0 + batch], strict=True)
        ]
        for key in rows[0]:
            totals[key] = totals.get(key, 0.0) + np.mean([r[key] for r in rows]) * len(rows)
    return {k: v / len(target) for k, v in totals.items()}


def _scaled_forecast(seed: int = 0, b: int = 7, s: int = 50, q: int = 6, n: int = 3):
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.1, 1.0, 25.0], size=(b, 1, 1))  # windows of very different |y|
    target = (rng.normal(1.0, 1.0, (b, q, n)) + 0.5) * scales
    samples = target[:, None] + rng.normal(0.3, 1.0, (b, s, q, n)) * scales[:, None]
    return target, samples


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_window_mean_equals_probts_evaluator(batch):
    target, samples = _scaled_forecast()
    expected = _probts_batched(target, samples, batch)
    metrics = {
        "crps_quantile": CRPSQuantile(aggregation="window_mean"),
        "nmae": NMAE(aggregation="window_mean"),
        "nrmse": NRMSE(aggregation="window_mean"),
        "mse": MSE(aggregation="window_mean"),
    }
    for b0 in range(0, len(target), batch):
        y, x = torch.tensor(target[b0 : b0 + batch]), torch.tensor(samples[b0 : b0 + batch])
        for m in metrics.values():
            m.update(x, y)
    for key, m in metrics.items():
        np.testing.assert_allclose(float(m.compute()), expected[key], rtol=1e-10, err_msg=key)


def test_pooled_is_the_ratio_of_sums_and_differs_from_the_window_mean():
    target, samples = _scaled_forecast(seed=1)
    rows = [_probts_window(t, x) for t, x in zip(target, samples, strict=True)]
    weights = np.abs(target).sum((1, 2))
    pooled_ref = np.sum([r["nmae"] * w for r, w in zip(rows, weights, strict=True)]) / weights.sum()
    pooled, windowed = NMAE(), NMAE(aggregation="window_mean")
    for m in (pooled, windowed):
        m.update(torch.tensor(samples), torch.tensor(target))
    np.testing.assert_allclose(float(pooled.compute()), pooled_ref, rtol=1e-10)
    assert abs(float(pooled.compute()) - float(windowed.compute())) > 1e-3


def test_exact_crps_and_crps_sum_window_means_match_properscoring():
    target, samples = _scaled_forecast(seed=2)
    crps_windows, count_windows, sum_windows = [], [], []
    for t, x in zip(target, samples, strict=True):
        point = ps.crps_ensemble(t, np.moveaxis(x, 0, -1))
        crps_windows.append(point.sum() / np.abs(t).sum())
        count_windows.append(point.mean())
        ysum, xsum = t.sum(-1), x.sum(-1)
        sum_windows.append(ps.crps_ensemble(ysum, xsum.T).sum() / np.abs(ysum).sum())
    got = build_metric_collection(
        metrics=["crps", "crps_unnormalized", "crps_sum"], aggregation="window_mean"
    )
    got.update(torch.tensor(samples), torch.tensor(target))
    values = {k: float(v) for k, v in got.compute().items()}
    np.testing.assert_allclose(values["crps"], np.mean(crps_windows), rtol=1e-10)
    np.testing.assert_allclose(values["crps_unnormalized"], np.mean(count_windows), rtol=1e-10)
    np.testing.assert_allclose(values["crps_sum"], np.mean(sum_windows), rtol=1e-10)


def test_masked_windows_use_their_observed_entries_and_empty_windows_are_skipped():
    target, samples = _scaled_forecast(seed=3, b=4)
    mask = np.ones(target.shape, dtype=bool)
    mask[0, :2] = False  # partly observed window
    mask[3] = False  # window without observations: no ratio, not counted
    metric = CRPS(aggregation="window_mean")
    metric.update(torch.tensor(samples), torch.tensor(target), mask=torch.tensor(mask))
    ratios = []
    for t, x, m in zip(target[:3], samples[:3], mask[:3], strict=True):
        point = ps.crps_ensemble(t, np.moveaxis(x, 0, -1))
        ratios.append(point[m].sum() / np.abs(t[m]).sum())
    np.testing.assert_allclose(float(metric.compute()), np.mean(ratios), rtol=1e-10)


def test_zero_denominator_window_raises_at_compute():
    target, samples = _scaled_forecast(seed=4, b=3)
    target[1] = 0.0
    metric = CRPSSum(aggregation="window_mean")
    metric.update(torch.tensor(samples), torch.tensor(target))
    with pytest.raises(ValueError, match="1 window\\(s\\) have a zero abs_target"):
        metric.compute()
    unnormalized = CRPSSum(normalize=False, aggregation="window_mean")
    unnormalized.update(torch.tensor(samples), torch.tensor(target))
    assert torch.isfinite(unnormalized.compute())


def test_shared_update_groups_keep_each_metric_exact():
    """mse/mae/nrmse and crps/crps_unnormalized share one update in a collection: each must still
    equal its own standalone value under both aggregations."""
    target, samples = _scaled_forecast(seed=5)
    x, y = torch.tensor(samples), torch.tensor(target)
    names = ["crps", "crps_unnormalized", "mse", "mae", "nrmse"]
    for aggregation in ("pooled", "window_mean"):
        collection = build_metric_collection(metrics=names, aggregation=aggregation)
        collection.update(x, y)
        got = collection.compute()
        for name in names:
            alone = build_metric_collection(metrics=[name], aggregation=aggregation)
            alone.update(x, y)
            torch.testing.assert_close(got[name], alone.compute()[name])


def test_collection_refuses_unknown_aggregations():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        build_metric_collection(metrics=["crps"], aggregation="per_window")
