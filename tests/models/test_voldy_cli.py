"""VolDy-VAE through the real CLI (``python -m probforecast``): fit, then test the best checkpoint."""

from __future__ import annotations

import json

import pytest

from tests.cli_runner import ok, run_cli
from tests.conftest import REPO, requires_real_data

pytestmark = pytest.mark.slow

TINY = [
    "--trainer.max_epochs",
    "2",
    "--trainer.logger",
    "false",
    "--data.num_batches_per_epoch",
    "3",
    "--data.batch_size",
    "8",
    "--model.forecaster.init_args.latent_dim",
    "8",
    "--model.forecaster.init_args.mlp_hidden",
    "16",
    "--model.val_num_samples",
    "10",
    "--model.num_samples",
    "20",
    "--forecast_plot.every_n_val_epochs",
    "0",
]


def _fit_and_test(tmp_path, *args: str) -> str:
    root = tmp_path / "run"
    common = [*args, "--trainer.default_root_dir", str(root), *TINY]
    ok(run_cli("fit", *common, cwd=tmp_path))
    best = json.loads((root / "checkpoints" / "best.json").read_text())
    assert best["monitor"] == "val/crps" and best["best_model_score"] > 0
    return ok(run_cli("test", *common, "--ckpt_path", "best", cwd=tmp_path)).stdout


def test_fit_and_test_on_synthetic_with_an_ablation(tmp_path):
    stdout = _fit_and_test(
        tmp_path,
        "--config",
        str(REPO / "configs" / "voldy_vae" / "etth1.yaml"),
        "--data.dataset",
        "synthetic",
        # synthetic data has no LTSF borders: its own (rolling) protocol, not ProbTS'
        *("--data.protocol", "default"),
        "--data.prediction_length",
        "30",
        "--data.context_length",
        "40",
        "--model.forecaster.init_args.scale_head",
        "lstm",
        "--model.forecaster.init_args.likelihood",
        "laplace",
    )
    for key in ("test/crps", "test/crps_quantile", "test/nmae", "test/quantile_coverage_error"):
        assert key in stdout


@requires_real_data
def test_fit_and_test_on_etth1_with_a_horizon_overlay(tmp_path, data_root):
    stdout = _fit_and_test(
        tmp_path,
        "--config",
        str(REPO / "configs" / "voldy_vae" / "etth1.yaml"),
        "--config",
        str(REPO / "configs" / "voldy_vae" / "horizons" / "h192.yaml"),
        # ProbTS' protocol of the config, with fewer windows: ceil((2880 - 192) / 480) = 6
        *("--data.val_stride", "480", "--data.test_stride", "480"),
        "--data.root",
        str(data_root),
        "--data.cache_dir",
        str(tmp_path / "cache"),
    )
    assert "test/crps_quantile" in stdout and "test/normalized_interval_width_90" in stdout
