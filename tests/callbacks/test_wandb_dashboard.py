"""What a W&B run holds, read back from the offline run files (no server): the resolved config,
train/val/test metrics, fan charts, GLS model views, system metrics, the per-series test table,
and the checkpoints as artifacts with ``log_model``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from probforecast.cli import ProbForecastCLI
from probforecast.utils.wandb_offline import iter_records, read_run
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY_GLS = [
    *("--config", str(REPO / "configs" / "quickstart.yaml")),
    *("--model.forecaster", "probforecast.models.GPVar"),
    *("--model.forecaster.init_args.hidden_size", "8", "--model.forecaster.init_args.rank", "2"),
    *("--model.forecaster.init_args.lags", "[1, 24]"),
    *("--model.forecaster.init_args.likelihood", "gls"),
    *("--data.context_length", "30", "--data.prediction_length", "6"),
    *("--data.synthetic.num_series", "3", "--data.synthetic.length", "400"),
    *("--data.synthetic.num_test_windows", "2", "--data.num_batches_per_epoch", "3"),
    *("--data.batch_size", "4"),
    *("--model.num_samples", "10", "--model.val_num_samples", "6"),
    *("--trainer.max_epochs", "2", "--forecast_plot.every_n_val_epochs", "1"),
    *("--forecast_plot.num_samples", "10", "--trainer.logger.init_args.log_model", "true"),
]


def run_cli(*args: str) -> None:
    """One CLI command in this process (saves a ~20 s interpreter start), its W&B run closed."""
    import wandb

    warnings.simplefilter("ignore")
    try:
        ProbForecastCLI(args=list(args))
    finally:
        wandb.finish()


def record_kinds(run_dir: Path) -> list[str]:
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("run-*.wandb")
    kinds = []
    for raw in iter_records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kinds.append(record.WhichOneof("record_type"))
    return kinds


def finished_run(run_dir: Path) -> dict:
    return read_run(run_dir, wait_for_exit_s=120.0)


def test_a_wandb_run_holds_the_dashboard(tmp_path):
    root = tmp_path / "run"
    common = ["--trainer.default_root_dir", str(root)]
    run_cli("fit", *TINY_GLS, *common)
    run_cli("test", *TINY_GLS, *common, "--ckpt_path", "best")
    fit_dir, test_dir = sorted((root / "wandb").glob("offline-run-*"))
    fit, test = finished_run(fit_dir), finished_run(test_dir)

    assert fit["config"]["cli"]["model"]["forecaster"]["class_path"] == "probforecast.models.GPVar"
    expected_fit = {
        "train/loss_epoch",
        "val/crps",
        "val/crps_sum",
        "val/energy_score",
        "val/forecast/filenames",
        "val/views/gls_correlation/filenames",
        "val/views/gls_mixture_weights/filenames",
        "system/train_windows_per_s",
        "system/val_paths_per_s",
        "system/val_seconds_per_batch",
        "system/peak_memory_mb",
    }
    assert expected_fit <= fit["history_keys"], expected_fit - fit["history_keys"]
    charts = [row for row in fit["history"] if "val/forecast/filenames" in row]
    assert len(charts) == 2, "a fan chart every validation epoch"
    assert "artifact" in record_kinds(fit_dir), "log_model: the checkpoints as W&B artifacts"

    expected_test = {
        "test/crps",
        "test/forecast/filenames",
        "test/views/gls_correlation/filenames",
        "test/series_metrics/_type",
        "system/test_paths_per_s",
        "system/test_seconds_per_batch",
    }
    assert expected_test <= test["history_keys"], expected_test - test["history_keys"]
    (table,) = [row for row in test["history"] if "test/series_metrics/_type" in row]
    assert table["test/series_metrics/_type"] == "table-file"
    assert table["test/series_metrics/nrows"] == 3, "one row per series"
    assert (root / "tables" / "test_series_metrics.csv").is_file()
