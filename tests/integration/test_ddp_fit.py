"""``strategy: ddp`` with 2 CPU processes (gloo): fit + test through the CLI, and the test
metrics equal a 1-process test of the same checkpoint over the same windows (metric states are
synced sums; sampling is seeded per window, not per rank or per batch)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from probforecast.cli import ProbForecastCLI
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def common(root: Path) -> list[str]:
    return [
        "--config",
        str(REPO / "configs" / "quickstart.yaml"),
        "--config",
        str(REPO / "configs" / "trainer" / "csv.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.max_epochs",
        "1",
        "--forecast_plot.every_n_val_epochs",
        "0",
        "--data.num_batches_per_epoch",
        "4",
        "--data.batch_size",
        "4",
        "--data.eval_batch_size",
        "3",  # batches differ between 1 and 2 processes: per-window seeding must make up for it
        "--data.context_length",
        "24",
        "--data.prediction_length",
        "6",
        "--data.synthetic.num_series",
        "3",
        "--data.synthetic.length",
        "400",
        "--data.synthetic.num_test_windows",
        "6",
        "--model.forecaster.init_args.hidden_size",
        "8",
        "--model.val_num_samples",
        "8",
        "--model.num_samples",
        "16",
    ]


DDP = [
    "--config",
    str(REPO / "configs" / "trainer" / "ddp.yaml"),
    "--trainer.accelerator",
    "cpu",
    "--trainer.devices",
    "2",
]


SCRIPT = Path(__file__).with_name("ddp_fit_test_script.py")


def run_ddp(out: Path, args: list[str]) -> str:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result.stdout + result.stderr


def test_ddp_two_processes_fit_and_test_equal_one_process(tmp_path):
    out = tmp_path / "ddp.json"
    log = run_ddp(out, [*common(tmp_path / "run"), "--trainer.logger", "false", *DDP])
    assert "distributed_backend=gloo" in log and "All distributed processes registered" in log
    info = json.loads(out.read_text())
    assert info["world_size"] == 2
    two = info["metrics"]

    warnings.simplefilter("ignore")
    cli = ProbForecastCLI(
        args=[
            "test",
            *common(tmp_path / "single"),
            "--trainer.logger",
            "false",
            "--trainer.devices",
            "1",
            "--ckpt_path",
            info["last"],
        ]
    )
    one = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}
    assert set(two) == set(one) and "test/crps" in one and "test/energy_score" in one
    for key, value in one.items():
        assert math.isclose(two[key], value, rel_tol=1e-6, abs_tol=1e-7), (key, two[key], value)
