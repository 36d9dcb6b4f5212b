"""The GLS paper's protocol through the real CLI (in-process): a shipped model config stacked with
``configs/protocols/gls_paper.yaml`` fits with loss-only validation on the official windows,
selects on ``val/loss`` and tests the selected checkpoint."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from probforecast.cli import ProbForecastCLI
from probforecast.models.module import ForecastModule
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "config", ["gpvar/exchange_rate_nips", "transformer/exchange_rate_nips_independent"]
)
def test_paper_protocol_fit_selects_on_validation_nll_then_tests(
    config, tmp_path, data_root, monkeypatch
):
    warnings.simplefilter("ignore")
    root = tmp_path / "run"
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs" / f"{config}.yaml")),
            *("--config", str(REPO / "configs" / "protocols" / "gls_paper.yaml")),
            *("--data.root", str(data_root), "--data.cache_dir", str(tmp_path / "cache")),
            *("--trainer.default_root_dir", str(root), "--trainer.logger", "false"),
            *("--trainer.max_steps", "4", "--data.num_batches_per_epoch", "2"),
            *("--trainer.enable_progress_bar", "false", "--forecast_plot.every_n_val_epochs", "0"),
            *("--model.num_samples", "4", "--model.forecaster.init_args.hidden_size", "8"),
        ],
        run=False,
    )
    assert cli.datamodule.protocol == "gls_paper"
    assert [c.monitor for c in cli.trainer.callbacks if isinstance(c, EarlyStopping)] == [
        "val/loss"
    ]
    assert cli.model.val_num_samples == 0
    sample_calls = []
    original = cli.model.forecaster.sample
    monkeypatch.setattr(
        cli.model.forecaster, "sample", lambda *a, **k: sample_calls.append(1) or original(*a, **k)
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.datamodule.split.val_starts == (6033, 6034, 6035, 6036, 6037)
    assert "val/loss" in cli.trainer.callback_metrics
    assert not any(k.startswith("val/crps") for k in cli.trainer.callback_metrics)
    assert not sample_calls, "loss-only validation must not draw samples"
    best = json.loads((root / "checkpoints" / "best.json").read_text())
    assert best["monitor"] == "val/loss"
    (result,) = cli.trainer.test(cli.model, cli.datamodule, ckpt_path=best["best_model_path"])
    assert torch.isfinite(torch.tensor(result["test/crps"]))
    assert len(sample_calls) >= 5  # test draws samples: one call per window (per-window seeding)


def test_val_num_samples_must_be_zero_or_at_least_two():
    from probforecast.models import SeasonalNaive

    forecaster = SeasonalNaive(2, 24, 6, "h", 4)
    with pytest.raises(ValueError, match="val_num_samples must be 0"):
        ForecastModule(forecaster, val_num_samples=1)
    assert ForecastModule(forecaster, val_num_samples=0).val_num_samples == 0
    assert ForecastModule(forecaster, num_samples=7).val_num_samples == 7
