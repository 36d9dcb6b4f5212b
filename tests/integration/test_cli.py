"""The real CLI end to end (its console entry point, in this process; ``python -m probforecast``
as a subprocess once), with W&B offline runs read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from probforecast.utils.wandb_offline import read_run
from tests.cli_runner import ok, run_cli
from tests.conftest import REPO, requires_real_data

pytestmark = pytest.mark.slow

TINY = [
    "--trainer.max_epochs",
    "2",
    "--data.num_batches_per_epoch",
    "4",
    "--data.batch_size",
    "8",
    "--model.forecaster.init_args.hidden_size",
    "8",
    "--model.val_num_samples",
    "20",
    "--model.num_samples",
    "30",
    "--data.synthetic.length",
    "600",
]


def wandb_runs(root: Path) -> list[dict]:
    """Every offline run under ``root``, read once W&B has written its exit record."""
    runs = sorted((root / "wandb").glob("offline-run-*"))
    return [read_run(d, wait_for_exit_s=120.0) for d in runs]


def test_fit_test_validate_predict_on_synthetic_with_wandb(tmp_path):
    root = tmp_path / "run"
    config = str(REPO / "configs" / "quickstart.yaml")
    common = ["--config", config, "--trainer.default_root_dir", str(root)]
    fit = ok(run_cli("fit", *common, *TINY, cwd=tmp_path))
    assert "best checkpoint:" in fit.stdout and "W&B run (offline)" in fit.stdout
    best = json.loads((root / "checkpoints" / "best.json").read_text())
    assert (
        Path(best["best_model_path"]).is_file() and (root / "checkpoints" / "last.ckpt").is_file()
    )
    assert best["monitor"] == "val/crps" and best["best_model_score"] > 0

    test = ok(run_cli("test", *common, *TINY, "--ckpt_path", "best", cwd=tmp_path))
    assert "test/crps" in test.stdout
    assert (
        "forecast plot (test):" in test.stdout and (root / "plots" / "forecast_test.png").is_file()
    )
    ok(run_cli("validate", *common, *TINY, "--ckpt_path", "last", cwd=tmp_path))
    predict = ok(run_cli("predict", *common, *TINY, "--ckpt_path", "best", cwd=tmp_path))
    assert "samples:" in predict.stdout
    saved = torch.load(root / "predictions.pt", weights_only=True)
    assert saved["samples"].shape == (4, 30, 24, 8) and len(saved["timestamps"]) == 4
    assert torch.isfinite(saved["samples"]).all()

    runs = wandb_runs(root)
    assert len(runs) == 4
    fit_run, test_run = runs[0], runs[1]
    assert {"train/loss_epoch", "val/crps", "val/loss"} <= fit_run["history_keys"]
    assert (
        "test/crps" in test_run["history_keys"]
        and "test/forecast/filenames" in test_run["history_keys"]
    )
    crps = [row["test/crps"] for row in test_run["history"] if "test/crps" in row]
    assert crps and crps[0] > 0
    assert fit_run["config"]["num_samples"] == 30
    resolved = fit_run["config"]["cli"]
    assert resolved["model"]["forecaster"]["class_path"] == "probforecast.models.GaussianRNN"
    assert resolved["model"]["forecaster"]["init_args"]["target_dim"] == 8, (
        "linked from the data module"
    )


def test_csv_logger_config(tmp_path):
    root = tmp_path / "csvrun"
    ok(
        run_cli(
            "fit",
            "--config",
            str(REPO / "configs" / "quickstart.yaml"),
            "--config",
            str(REPO / "configs" / "trainer" / "csv.yaml"),
            "--trainer.default_root_dir",
            str(root),
            *TINY,
            cwd=tmp_path,
        )
    )
    (metrics,) = root.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    assert any(row.get("val/crps") for row in rows)
    assert not (root / "wandb").exists()


def test_seasonal_naive_fit_and_test_without_trainable_weights(tmp_path):
    root = tmp_path / "naive"
    args = [
        "--config",
        str(REPO / "configs" / "quickstart.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--model.forecaster",
        "probforecast.models.SeasonalNaive",
        "--trainer.max_epochs",
        "1",
        "--data.num_batches_per_epoch",
        "2",
        "--model.val_num_samples",
        "20",
    ]
    ok(run_cli("fit", *args, cwd=tmp_path))
    assert "test/crps" in ok(run_cli("test", *args, "--ckpt_path", "best", cwd=tmp_path)).stdout


@requires_real_data
def test_fit_and_test_on_etth1(tmp_path, data_root):
    root = tmp_path / "etth1"
    args = [
        "--config",
        str(REPO / "configs" / "gaussian_rnn" / "etth1.yaml"),
        "--data.root",
        str(data_root),
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "1",
        "--data.num_batches_per_epoch",
        "3",
        "--data.max_val_windows",
        "4",
        "--data.max_test_windows",
        "4",
        "--model.val_num_samples",
        "10",
        "--model.num_samples",
        "20",
        "--model.forecaster.init_args.hidden_size",
        "8",
    ]
    ok(run_cli("fit", *args, cwd=tmp_path))
    test = ok(run_cli("test", *args, "--ckpt_path", "best", cwd=tmp_path))
    assert "test/crps" in test.stdout
    runs = wandb_runs(root)
    with_test = [r for r in runs if "test/crps" in r["history_keys"]]
    assert len(with_test) == 1, [sorted(r["history_keys"]) for r in runs]
    assert with_test[0]["history"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data.dataset", "no_such_data"], "unknown dataset 'no_such_data'"),
        (
            ["--data.dataset", "etth1", "--data.root", "/nonexistent"],
            "ETTh1/ETTh1.csv.gz not found",
        ),
        (["--data.context_length", "5000"], "does not fit in its training range"),
        (["--data.batch_size", "many"], "batch_size"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, args, message):
    result = run_cli(
        "fit",
        "--config",
        str(REPO / "configs" / "quickstart.yaml"),
        "--trainer.default_root_dir",
        str(tmp_path / "r"),
        *args,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_non_numeric_csv_column_gives_one_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "date,a,b\n"
        + "".join(f"2021-01-01 {h:02d}:00,{h},{'x' if h == 5 else h}\n" for h in range(24))
    )
    result = run_cli(
        "fit",
        "--config",
        str(REPO / "configs" / "quickstart.yaml"),
        "--data.dataset",
        str(path),
        "--data.prediction_length",
        "2",
        "--data.context_length",
        "4",
        "--trainer.default_root_dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "column 'b' is not numeric" in result.stderr and "Traceback" not in result.stderr


def test_module_entry_point_help():
    result = ok(run_cli("--help", cwd=REPO, in_process=False))
    assert "fit" in result.stdout and "test" in result.stdout


def test_a_fresh_process_prints_no_third_party_noise(tmp_path):
    """What a user sees: our report and Lightning's lines, none of the hints and deprecations
    that third parties print on every run (a fresh process: warnings show once per process)."""
    result = ok(
        run_cli(
            "fit",
            "--config",
            str(REPO / "configs" / "quickstart.yaml"),
            "--trainer.default_root_dir",
            str(tmp_path / "r"),
            "--trainer.max_epochs",
            "1",
            "--data.num_batches_per_epoch",
            "2",
            "--trainer.log_every_n_steps",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            cwd=tmp_path,
            in_process=False,
        )
    )
    output = result.stdout + result.stderr
    for noise in (
        "litlogger",
        "anonymous setting",
        "LeafSpec",
        "AutoDateLocator",
        "json-handling",
        "INFO root",
    ):
        assert noise not in output, f"{noise!r} in the output:\n{output[-3000:]}"
    assert "best checkpoint:" in result.stdout and "W&B run (offline)" in result.stdout
