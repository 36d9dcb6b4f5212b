"""Per-series test metrics: ``point_parts``/``series_sums``/``series_table_rows`` against naive
loops with properscoring's CRPS and numpy quantiles."""

from __future__ import annotations

import numpy as np
import properscoring
import torch

from probforecast.callbacks.series_metrics import (
    COLUMNS,
    point_parts,
    series_sums,
    series_table_rows,
)


def naive_rows(samples, target, mask, ids, num_series):
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
                lo, hi = np.quantile(x, [0.05, 0.95])
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
    assert len(rows[0]) == len(COLUMNS)
    for got, want in zip(rows, expected, strict=True):
        assert got[0] == want[0] and got[-1] == want[-1]
        np.testing.assert_allclose(got[1:-1], want[1:-1], rtol=1e-10, equal_nan=True)
    assert rows[-1][-1] == 0 and np.isnan(rows[-1][1]), "a series without points is NaN"


def test_probforecast_test_draws_every_window_once(tmp_path):
    """The per-series table reuses the test step's samples: every window is sampled once, not
    twice."""
    import lightning.pytorch as pl

    from probforecast.callbacks.series_metrics import SeriesMetricsTable
    from probforecast.data import ForecastDataModule, SyntheticOptions
    from probforecast.models import SeasonalNaive
    from probforecast.models.module import ForecastModule

    dm = ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=6,
        eval_batch_size=2,
        synthetic=SyntheticOptions(num_series=3, length=200, num_test_windows=5),
    )
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
    trainer.test(ForecastModule(forecaster, num_samples=4), datamodule=dm)
    assert sum(calls) == len(dm.split.test_starts) == 5
    assert table.sums is not None and float(table.sums[:, -1].sum()) == 5 * 6 * 3
