"""The two-stage pipeline through the CLI: fit a JMCE, then CW-Diff / CW-Flow on its checkpoint."""

from __future__ import annotations

import warnings

import pytest
import torch

from probforecast.cli import ProbForecastCLI
from tests.cli_runner import run_cli
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY = [
    "--trainer.max_epochs", "1",
    "--trainer.logger", "false",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--data.num_batches_per_epoch", "3",
    "--data.batch_size", "8",
    "--data.synthetic.length", "600",
    "--model.val_num_samples", "4",
    "--model.num_samples", "8",
    "--forecast_plot.every_n_val_epochs", "0",
]  # fmt: skip


def fit(config: str, root, *extra: str) -> ProbForecastCLI:
    warnings.simplefilter("ignore")
    args = ["--config", str(REPO / config), "--trainer.default_root_dir", str(root), *TINY, *extra]
    cli = ProbForecastCLI(args=args, run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


def forecaster_state(path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("forecaster.")}


def test_two_stage_pipeline_jmce_then_cw_diff_and_cw_flow(tmp_path):
    jmce_root = tmp_path / "jmce"
    fit("configs/jmce/synthetic.yaml", jmce_root)
    ckpt = jmce_root / "checkpoints" / "best.ckpt"  # the lowest val/loss (configs/jmce)
    jmce_state = forecaster_state(ckpt)
    assert jmce_state and "val/loss" in str(torch.load(ckpt, weights_only=True)["callbacks"])

    use = ["--model.forecaster.init_args.jmce.checkpoint", str(ckpt)]
    diff_root = tmp_path / "cw_diff"
    cli = fit("configs/cw_diff/synthetic.yaml", diff_root, *use)
    assert "val/crps" in cli.trainer.callback_metrics
    # the frozen JMCE inside the CW-Diff checkpoint is the JMCE run's, unchanged by training
    cw_state = forecaster_state(diff_root / "checkpoints" / "last.ckpt")
    for key, value in jmce_state.items():
        got = cw_state["forecaster.jmce." + key[len("forecaster.") :]]
        assert got == value if isinstance(value, dict) else torch.equal(got, value)

    # the real command line: probforecast test --ckpt_path best
    result = run_cli(
        "test", "--config", str(REPO / "configs/cw_diff/synthetic.yaml"),
        "--trainer.default_root_dir", str(diff_root), *TINY, *use, "--ckpt_path", "best",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/crps" in result.stdout and "test/qice" in result.stdout

    flow = fit("configs/cw_flow/synthetic.yaml", tmp_path / "cw_flow", *use)
    assert "val/crps" in flow.trainer.callback_metrics

    with pytest.raises(ValueError, match="other sizes"):
        fit(
            "configs/cw_flow/synthetic.yaml",
            tmp_path / "bad",
            *use,
            "--model.forecaster.init_args.jmce.d_model",
            "48",
        )
