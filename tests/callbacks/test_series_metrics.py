"""Per-series test metrics (``metrics/series.py``, logged by ``SeriesMetricsTable``) against
naive loops with properscoring's CRPS and numpy quantiles."""

from __future__ import annotations

import numpy as np
import properscoring
import torch

from probforecast.metrics.series import (
    SeriesMetrics,
    point_parts,
    series_columns,
    series_sums,
    series_table_rows,
)


def naive_rows(samples, target, mask, ids, num_series, level=0.9):
    """Loop over windows, horizon and columns; accumulate per dataset series."""
    acc = {i: {"crps": 0.0, "err": 0.0, "abs": 0.0, "hit": 0, "n": 0} for i in range(num_series)}
    b, _, q, n = samples.shape
    for w in range(b):
        for t in range(q):
            for c in range(n):
                if not mask[w, t, c]:
                    continue
                x, y = samples[w, :, t, c], target[w, t, c]
                a = acc[int(ids[w, c])]
                a["crps"] += properscoring.crps_ensemble(y, x)
                a["err"] += abs(np.median(x) - y)
                a["abs"] += abs(y)
                lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
                a["hit"] += int(lo <= y <= hi)
                a["n"] += 1
    rows = []
    for i in range(num_series):
        a = acc[i]
        if a["n"] == 0:
            rows.append([f"s{i}", *[float("nan")] * 5, 0])
            continue
        rows.append(
            [
                f"s{i}",
                a["crps"] / a["n"],
                a["crps"] / a["abs"],
                a["err"] / a["n"],
                a["err"] / a["abs"],
                a["hit"] / a["n"],
                a["n"],
            ]
        )
    return rows


def test_series_table_matches_naive_loops_with_subsets_and_missing_values():
    rng = np.random.default_rng(0)
    b, s, q, n, num_series = 3, 9, 4, 3, 5
    samples = rng.normal(size=(b, s, q, n)) * 2 + 1
    target = rng.normal(size=(b, q, n)) * 2 + 1
    mask = rng.random((b, q, n)) > 0.25
    target[~mask] = np.nan  # unobserved truths must not leak into any sum
    ids = np.stack([rng.permutation(num_series - 1)[:n] for _ in range(b)])  # series 4 unseen
    parts = point_parts(torch.tensor(samples), torch.tensor(target), torch.tensor(mask))
    sums = series_sums(parts, torch.tensor(ids), num_series)
    rows = series_table_rows(sums, [f"s{i}" for i in range(num_series)])
    expected = naive_rows(samples, target, mask, ids, num_series)
    assert len(rows[0]) == len(series_columns(0.9))
    for got, want in zip(rows, expected, strict=True):
        assert got[0] == want[0] and got[-1] == want[-1]
        np.testing.assert_allclose(got[1:-1], want[1:-1], rtol=1e-10, equal_nan=True)
    assert rows[-1][-1] == 0 and np.isnan(rows[-1][1]), "a series without points is NaN"


def five_window_datamodule():
    """3 synthetic series, 5 test windows of 6 steps, 2 windows per test batch."""
    from probforecast.data import ForecastDataModule, SyntheticOptions

    return ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=6,
        eval_batch_size=2,
        synthetic=SyntheticOptions(num_series=3, length=200, num_test_windows=5),
    )


def test_probforecast_test_draws_every_window_once(tmp_path):
    """The per-series table reuses the test step's samples: every window is sampled once, not
    twice."""
    import lightning.pytorch as pl

    from probforecast.callbacks.series_metrics import SeriesMetricsTable
    from probforecast.models import SeasonalNaive
    from probforecast.models.module import ForecastModule

    dm = five_window_datamodule()
    dm.setup("test")
    forecaster = SeasonalNaive(3, 24, 6, freq=dm.freq, num_time_features=dm.num_time_features)
    calls = []
    original = forecaster.sample
    forecaster.sample = lambda batch, n, noise=None: (
        calls.append(batch.batch_size) or original(batch, n, noise)
    )
    table = SeriesMetricsTable()
    trainer = pl.Trainer(
        logger=False,
        callbacks=[table],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    module = ForecastModule(forecaster, num_samples=4, interval_level=0.8)
    trainer.test(module, datamodule=dm)
    assert sum(calls) == len(dm.split.test_starts) == 5
    sums = module.test_series_metrics.sums
    assert float(sums[:, -1].sum()) == 5 * 6 * 3
    header, *rows = table.last_path.read_text().splitlines()
    assert header.split(",") == series_columns(0.8) and "coverage80" in header
    assert len(rows) == 3
    ratios = module.test_series_metrics.compute()
    for row, expected in zip(rows, ratios.tolist(), strict=True):
        np.testing.assert_allclose([float(v) for v in row.split(",")[1:-1]], expected, rtol=1e-9)


def test_series_metric_is_independent_of_batching_and_merges_by_sum():
    """Any interval level; the same sums whether updated at once, window by window, or in two
    metrics merged as DDP's sum reduction merges them."""
    rng = np.random.default_rng(1)
    b, s, q, n, num_series = 4, 11, 3, 2, 4
    samples = torch.tensor(rng.normal(size=(b, s, q, n)))
    target = torch.tensor(rng.normal(size=(b, q, n)))
    mask = torch.tensor(rng.random((b, q, n)) > 0.2)
    ids = torch.tensor(np.stack([rng.permutation(num_series)[:n] for _ in range(b)]))
    whole = SeriesMetrics(num_series, level=0.7)
    whole.update(samples, target, mask, ids)
    expected = naive_rows(samples.numpy(), target.numpy(), mask.numpy(), ids.numpy(), 4, 0.7)
    np.testing.assert_allclose(
        whole.compute().numpy(), np.array([r[1:-1] for r in expected]), rtol=1e-10
    )
    first, second = SeriesMetrics(num_series, 0.7), SeriesMetrics(num_series, 0.7)
    for w in range(b):
        (first if w < 2 else second).update(
            samples[w : w + 1], target[w : w + 1], mask[w : w + 1], ids[w : w + 1]
        )
    first.merge_state(second)
    torch.testing.assert_close(first.sums, whole.sums)


def test_series_metric_rejects_ids_outside_the_dataset():
    metric = SeriesMetrics(3)
    samples, target = torch.zeros(1, 2, 1, 2), torch.zeros(1, 1, 2)
    mask = torch.ones(1, 1, 2, dtype=torch.bool)
    with np.testing.assert_raises_regex(ValueError, r"series_ids must lie in \[0, 3\)"):
        metric.update(samples, target, mask, torch.tensor([[0, 3]]))
    with np.testing.assert_raises_regex(ValueError, r"series_ids must be \[B, N\]"):
        metric.update(samples, target, mask, torch.tensor([0, 1]))


def test_series_metrics_off_skips_the_second_pass_and_the_table_refuses_it(tmp_path, monkeypatch):
    """``series_metrics=False``: the test step never updates a ``SeriesMetrics`` (no second
    pass over the samples), the logged metrics are unchanged, and an enabled table says
    what to change; the CLI links ``--series_metrics.enabled`` to the module."""
    import lightning.pytorch as pl
    import pytest

    from probforecast.callbacks.series_metrics import SeriesMetricsTable
    from probforecast.cli import QUIET_TRAINER_ARGS, ProbForecastCLI
    from probforecast.models import SeasonalNaive
    from probforecast.models.module import ForecastModule
    from tests.conftest import REPO

    dm = five_window_datamodule()
    updates = []
    real = SeriesMetrics.update
    monkeypatch.setattr(
        SeriesMetrics, "update", lambda self, *a, **k: updates.append(1) or real(self, *a, **k)
    )
    results = {}
    for on in (True, False):
        forecaster = SeasonalNaive(3, 24, 6, freq=dm.freq, num_time_features=dm.num_time_features)
        module = ForecastModule(forecaster, num_samples=4, series_metrics=on)
        assert (module.test_series_metrics is None) is (not on)
        trainer = pl.Trainer(
            logger=False,
            callbacks=[SeriesMetricsTable(enabled=on)],
            enable_progress_bar=False,
            default_root_dir=str(tmp_path),
        )
        (results[on],) = trainer.test(module, datamodule=dm, verbose=False)
        assert len(updates) == 3  # the 3 test batches of the first run only
    assert results[True] == results[False]
    trainer = pl.Trainer(logger=False, callbacks=[SeriesMetricsTable()], enable_progress_bar=False)
    with pytest.raises(ValueError, match="built with series_metrics=False"):
        trainer.test(module, datamodule=dm, verbose=False)

    for flag, tracked in (("false", False), ("true", True)):
        cli = ProbForecastCLI(
            args=[
                "--config",
                str(REPO / "configs" / "quickstart.yaml"),
                *QUIET_TRAINER_ARGS,
                "--trainer.default_root_dir",
                str(tmp_path / flag),
                "--series_metrics.enabled",
                flag,
            ],  # fmt: skip
            run=False,
        )
        assert (cli.model.test_series_metrics is not None) is tracked
