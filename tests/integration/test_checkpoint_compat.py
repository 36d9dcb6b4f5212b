"""Backward compatibility: a checkpoint written by release 0.1.0 must keep loading.

``tests/data/checkpoints/gaussian_rnn-0.1.0.ckpt`` was written by this release (GaussianRNN on
the built-in synthetic data, non-default module settings) with
``python -m tests.integration.test_checkpoint_compat --write``; the JSON beside it holds what
the model computed then. Never regenerate it to make this test pass: a failure means old
checkpoints no longer load, or load into a different model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from probforecast import api
from probforecast.data import ForecastDataModule
from probforecast.models import GaussianRNN
from probforecast.models.module import ForecastModule
from tests.models.test_checkpoint_io import facts, train_and_save
from tests.models.test_checkpoint_io import tiny_datamodule as datamodule

HERE = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
CHECKPOINT = HERE / "gaussian_rnn-0.1.0.ckpt"
EXPECTED = HERE / "gaussian_rnn-0.1.0.json"
SETTINGS = {"interval_level": 0.95, "sample_seed_scope": "batch", "sample_seed": 3}


def reference_outputs(module: ForecastModule, dm: ForecastDataModule) -> dict:
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        loss = module.forecaster.loss(batch).item()
        samples = module.draw_samples(batch, 4)
    return {"loss": loss, "sample_mean": samples.mean().item(), "sample_std": samples.std().item()}


def write_reference() -> None:
    pl.seed_everything(0, verbose=False)
    dm = datamodule()
    forecaster = GaussianRNN(**facts(dm), hidden_size=6, num_layers=1)
    module = ForecastModule(forecaster, num_samples=4, **SETTINGS)
    HERE.mkdir(parents=True, exist_ok=True)
    train_and_save(module, dm, CHECKPOINT)
    module.eval()
    EXPECTED.write_text(json.dumps(reference_outputs(module, datamodule()), indent=2) + "\n")


def test_release_checkpoint_loads_with_its_settings_and_computes_the_same():
    module = ForecastModule.load(CHECKPOINT)
    assert isinstance(module.forecaster, GaussianRNN)
    assert module.forecaster.init_spec()["init_args"]["hidden_size"] == 6
    for name, value in SETTINGS.items():
        assert module.hparams[name] == value, name
    assert module.sample_seed_scope == "batch" and module.sample_seed == 3
    assert "coverage_95" in module.test_metrics.keys(keep_base=True)
    got = reference_outputs(module, datamodule())
    expected = json.loads(EXPECTED.read_text())
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-5 * max(1.0, abs(value)), key


def test_release_checkpoint_loads_through_the_api_with_its_data():
    predictor = api.load(CHECKPOINT)
    assert predictor.datamodule.target_dim == 3 and predictor.datamodule.context_length == 24
    forecast = predictor.predict(max_windows=1)
    assert forecast.samples.shape[1:] == (4, 6, 3)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.integration.test_checkpoint_compat --write")
    write_reference()
