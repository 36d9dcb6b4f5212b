"""One tiny Trainer run with every dashboard callback (CSV logger): files in the run directory,
``system/*`` metrics, the per-series table consistent with the logged test CRPS, and rich
progress bars with samples/s."""

from __future__ import annotations

import csv
import resource
import warnings
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger

from probforecast.callbacks import (
    ForecastPlot,
    ModelViews,
    SeriesMetricsTable,
    SystemMetrics,
    ThroughputProgressBar,
)
from probforecast.callbacks.progress import SamplesPerSecondColumn
from probforecast.callbacks.system_metrics import peak_memory_mb
from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GPVar
from probforecast.models.module import ForecastModule

pytestmark = pytest.mark.slow
BATCHES, BATCH = 3, 4


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("dash")
    dm = ForecastDataModule(
        "synthetic",
        context_length=30,
        prediction_length=6,
        batch_size=BATCH,
        num_batches_per_epoch=BATCHES,
        eval_batch_size=2,
        synthetic=SyntheticOptions(num_series=3, length=300, num_test_windows=3),
    )
    facts = ("target_dim", "context_length", "prediction_length", "freq", "num_time_features")
    model = GPVar(
        *(getattr(dm, f) for f in facts), hidden_size=8, rank=2, lags=[1, 24], likelihood="gls"
    )
    module = ForecastModule(model, num_samples=12, val_num_samples=6)
    callbacks = {
        "plot": ForecastPlot(num_series=2, num_samples=10),
        "views": ModelViews(),
        "system": SystemMetrics(),
        "table": SeriesMetricsTable(),
        "bar": ThroughputProgressBar(),
    }
    trainer = pl.Trainer(
        max_epochs=1,
        default_root_dir=str(root),
        logger=CSVLogger(str(root), name="csv"),
        callbacks=list(callbacks.values()),
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(module, dm)
    fit_metrics = dict(trainer.callback_metrics)
    (test_metrics,) = trainer.test(module, dm, verbose=False)
    return root, callbacks, fit_metrics, test_metrics, len(dm.val_dataloader().dataset)


def test_figures_are_png_files_in_the_run_directory(run):
    root, callbacks, *_ = run
    names = {p.name for p in (root / "plots").glob("*.png")}
    assert {"forecast_val_epoch000.png", "forecast_test.png"} <= names
    assert {"gls_correlation_test.png", "gls_mixture_weights_val_epoch000.png"} <= names
    assert set(callbacks["views"].last_paths) >= {
        "val/views/gls_correlation",
        "test/views/gls_correlation",
    }


def test_system_metrics_count_what_ran(run):
    _, callbacks, fit, test, num_val = run
    state = callbacks["system"]._state
    assert state["train"][2] == BATCHES * BATCH, "windows of the epoch"
    assert state["val"][2] == num_val * 6, "validation windows x 6 samples"
    assert state["test"][2] == 3 * 12 and state["test"][3] == 2, "3 windows x 12 samples, 2 batches"
    assert fit["system/train_windows_per_s"] > 0 and fit["system/val_paths_per_s"] > 0
    assert test["system/test_paths_per_s"] > 0 and test["system/test_seconds_per_batch"] > 0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 0 < test["system/peak_memory_mb"] <= rss_mb + 1e-6
    assert peak_memory_mb(pl.LightningModule().device) == pytest.approx(rss_mb, rel=0.5)


def test_series_table_agrees_with_the_logged_test_crps(run):
    root, callbacks, _, test, _ = run
    with callbacks["table"].last_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and [r["series"] for r in rows] == ["0", "1", "2"]
    counts = np.array([float(r["num_points"]) for r in rows])
    crps = np.array([float(r["crps"]) for r in rows])
    assert counts.sum() == 3 * 6 * 3
    # the table uses the test step's (seeded) samples: its pooled CRPS is the logged one
    pooled = (crps * counts).sum() / counts.sum()
    assert pooled == pytest.approx(test["test/crps_unnormalized"], rel=1e-5)
    assert all(0.0 <= float(r["coverage90"]) <= 1.0 for r in rows)


def test_progress_bar_reports_samples_per_second(run):
    _, callbacks, *_ = run
    bar = callbacks["bar"]
    assert len(bar.rates) >= 3, "train, validation and test bars"
    assert all(rate > 0 for rate in bar.rates.values())
    columns = [c for c in bar.progress.columns if isinstance(c, SamplesPerSecondColumn)]
    assert len(columns) == 1
    task_id, rate = next(iter(bar.rates.items()))
    task = SimpleNamespace(id=task_id)
    assert columns[0].render(task).plain == f"{rate:,.0f} samples/s"
