"""The metric collection: keys, selection, kwargs routing, batch-size invariance, input checks."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics import MetricCollection

from probforecast.metrics import (
    CRPS,
    DEFAULT_METRICS,
    METRIC_REGISTRY,
    build_metric_collection,
)

from .helpers import make_forecast

ALL = list(METRIC_REGISTRY)


def _update(collection: MetricCollection, data: dict, rows: slice) -> None:
    mask = None if data["mask"] is None else data["mask"][rows]
    collection.update(
        data["samples"][rows],
        data["target"][rows],
        mask=mask,
        past_target=data["past_target"][rows],
        series_scale=data["series_scale"][rows],
    )


def _values(collection: MetricCollection) -> dict[str, float]:
    return {k: v.item() for k, v in collection.compute().items()}


def test_default_keys_and_prefix():
    collection = build_metric_collection("val/")
    expected = {
        "crps", "crps_unnormalized", "crps_quantile", "crps_sum", "energy_score", "qice",
        "quantile_coverage_error", "coverage_90", "interval_width_90", "nmae", "nrmse", "mse",
        "mae", "variogram_score", "prob_corr",
    }  # fmt: skip
    assert set(collection.keys()) == {f"val/{k}" for k in expected}
    assert (
        "normalized_interval_width" in METRIC_REGISTRY
        and "normalized_interval_width" not in DEFAULT_METRICS
    )
    levelled = build_metric_collection(
        metrics=["coverage", "normalized_interval_width"], interval_level=0.95
    )
    assert set(levelled.keys()) == {"coverage_95", "normalized_interval_width_95"}
    assert levelled["coverage_95"].level == 0.95


def test_subset_and_options():
    collection = build_metric_collection(
        "test/", metrics=["crps", "crps_quantile"], quantile_levels=[0.1, 0.5, 0.9]
    )
    assert set(collection.keys()) == {"test/crps", "test/crps_quantile"}
    assert isinstance(collection["crps"], CRPS)
    assert collection["crps_quantile"].quantiles == (0.1, 0.5, 0.9)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown metric\(s\) \['crsp'\].*valid names.*'energy_score'"
    ):
        build_metric_collection(metrics=["crps", "crsp"])
    with pytest.raises(ValueError, match="repeated"):
        build_metric_collection(metrics=["crps", "crps"])


def test_every_metric_is_a_finite_scalar_with_masks_and_nan_targets():
    data = make_forecast(b=6, s=20, q=4, n=5, p=7, seed=1, observed=0.7)
    assert torch.isnan(data["target"]).any()
    collection = build_metric_collection(metrics=ALL)
    _update(collection, data, slice(None))
    for key, value in collection.compute().items():
        assert value.ndim == 0, key
        assert torch.isfinite(value), key


def test_shared_state_groups_give_the_same_values_as_separate_metrics():
    data = make_forecast(b=4, s=15, seed=2)
    grouped = build_metric_collection(metrics=["crps", "crps_unnormalized", "mse", "mae", "nrmse"])
    _update(grouped, data, slice(0, 2))
    _update(grouped, data, slice(2, 4))
    for name in ("crps", "crps_unnormalized", "mse", "mae", "nrmse"):
        alone = build_metric_collection(metrics=[name])
        _update(alone, data, slice(None))
        assert grouped[name].compute().item() == pytest.approx(
            alone[name].compute().item(), rel=1e-12
        )


@pytest.mark.parametrize("observed", [1.0, 0.75])
def test_batch_size_invariance(observed):
    data = make_forecast(b=14, s=16, q=3, n=4, p=5, seed=3, observed=observed)
    results = []
    for batch in (1, 7, 14):
        collection = build_metric_collection(metrics=ALL)
        for start in range(0, 14, batch):
            _update(collection, data, slice(start, start + batch))
        results.append(_values(collection))
    for other in results[1:]:
        for key, value in results[0].items():
            assert other[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key


def test_compute_before_update_is_nan_with_a_warning():
    collection = build_metric_collection(metrics=["crps", "qice", "energy_score"])
    with pytest.warns(UserWarning, match="before the ``update``"):
        values = collection.compute()
    assert all(math.isnan(v.item()) for v in values.values())


def test_fully_masked_batch_adds_nothing():
    data = make_forecast(b=4, s=10, seed=4)
    reference = build_metric_collection(metrics=ALL)
    _update(reference, data, slice(None))
    with_empty = build_metric_collection(metrics=ALL)
    _update(with_empty, data, slice(None))
    empty = dict(data, mask=torch.zeros_like(data["target"], dtype=torch.bool))
    empty["target"] = torch.full_like(data["target"], float("nan"))
    _update(with_empty, empty, slice(None))
    for key, value in _values(reference).items():
        assert _values(with_empty)[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize(
    ("samples_shape", "target_shape", "message"),
    [
        ((2, 3, 4), (2, 3, 4), r"samples must be 4-D \[B, S, Q, N\], got shape \(2, 3, 4\)"),
        ((2, 3, 4, 5), (2, 4), r"target must be 3-D \[B, Q, N\]"),
        ((2, 3, 4, 5), (2, 4, 6), r"expected target \[B, Q, N\] = \(2, 4, 5\)"),
    ],
)
def test_shape_errors_name_the_expected_shapes(samples_shape, target_shape, message):
    collection = build_metric_collection(metrics=["crps"])
    with pytest.raises(ValueError, match=message):
        collection.update(torch.zeros(samples_shape), torch.zeros(target_shape))


def test_mask_shape_is_checked():
    data = make_forecast(b=2, q=3, n=2)
    with pytest.raises(ValueError, match=r"mask must have the target's shape \(2, 3, 2\)"):
        CRPS().update(data["samples"], data["target"], torch.ones(2, 3, dtype=torch.bool))


def test_float_mask_is_accepted():
    data = make_forecast(b=3, s=8, seed=5, observed=0.6)
    as_bool, as_float = CRPS(), CRPS()
    as_bool.update(data["samples"], data["target"], data["mask"])
    as_float.update(data["samples"], data["target"], data["mask"].double())
    assert as_float.compute().item() == as_bool.compute().item()


def test_empty_batch_adds_nothing():
    data = make_forecast(b=4, s=10, seed=6, observed=0.8)
    reference = build_metric_collection(metrics=ALL)
    _update(reference, data, slice(None))
    with_empty = build_metric_collection(metrics=ALL)
    _update(with_empty, data, slice(0, 0))
    _update(with_empty, data, slice(None))
    for key, value in _values(reference).items():
        assert _values(with_empty)[key] == pytest.approx(value, rel=1e-12), key


def test_empty_sample_horizon_or_series_axis_is_rejected():
    with pytest.raises(ValueError, match=r"S, Q, N >= 1"):
        CRPS().update(torch.zeros(2, 0, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"S, Q, N >= 1"):
        CRPS().update(torch.zeros(2, 5, 3, 0), torch.zeros(2, 3, 0))


def test_forecast_module_interval_level_sets_the_levelled_metrics():
    from probforecast.models import SeasonalNaive
    from probforecast.models.module import ForecastModule

    module = ForecastModule(SeasonalNaive(2, 48, 12), interval_level=0.95)
    keys = set(module.test_metrics)
    assert {"test/coverage_95", "test/interval_width_95"} <= keys
    assert not any(k.endswith("_90") for k in keys)
    with pytest.raises(ValueError, match="interval_level"):
        ForecastModule(SeasonalNaive(2, 48, 12), interval_level=1.5)


def test_every_paper_variant_builds_the_metric_it_names():
    from probforecast.metrics.paper_variants import PAPER_VARIANTS, variants_table

    samples = torch.rand(2, 16, 3, 4) + 0.5
    target = torch.rand(2, 3, 4) + 0.5
    for variant in PAPER_VARIANTS:
        if variant.metric is None:
            continue
        collection = build_metric_collection(metrics=[variant.metric], **variant.options)
        extra = {
            "series_scale": torch.ones(2, 4),
            "past_target": torch.rand(2, 5, 4),
        }
        collection.update(samples, target, **extra)
        (value,) = collection.compute().values()
        assert torch.isfinite(value), variant
    table = variants_table()
    assert table.count("\n") == len(PAPER_VARIANTS) + 1
    assert "`crps_sum_quantile` | `quantile_levels=[0.1," in table
