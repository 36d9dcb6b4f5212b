"""Large N: GPVar with the GLS likelihood trains on random subsets of 20 of N = 2,000 synthetic
series and samples all 2,000 jointly, within a stated memory budget (peak resident memory
beyond the process' size before the call; Linux ``VmHWM``). Timing is in
``scripts/bench_scale.py``, never asserted here."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GPVar
from probforecast.models.module import ForecastModule

N, SUBSET, SAMPLES = 2000, 20, 10
BUDGET_MIB = (
    1024  # sampling one window, 10 samples, all 2,000 series (measured: see docs/scaling.md)
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory via /proc"),
]


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(field)


def test_gpvar_gls_trains_on_subsets_and_samples_2000_series_jointly(tmp_path):
    warnings.simplefilter("ignore")
    pl.seed_everything(0)
    dm = ForecastDataModule(
        "synthetic",
        context_length=48,
        prediction_length=24,
        batch_size=4,
        eval_batch_size=1,
        num_batches_per_epoch=3,
        num_series_per_batch=SUBSET,
        synthetic=SyntheticOptions(num_series=N, length=400, num_test_windows=1),
    )
    dm.setup("fit")
    forecaster = GPVar(
        target_dim=dm.target_dim,
        context_length=48,
        prediction_length=24,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        hidden_size=8,
        rank=3,
        lags=[1, 24],
        likelihood="gls",
    )
    module = ForecastModule(forecaster, num_samples=SAMPLES, val_num_samples=2)
    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch.series_ids.clone())

    trainer = pl.Trainer(
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(module, dm)
    assert seen and all(ids.shape == (4, SUBSET) for ids in seen)  # trained on subsets
    assert len(torch.cat(seen).unique()) > SUBSET  # of different series

    batch = next(iter(dm.test_dataloader()))
    assert batch.num_series == N
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak
    before = _kib("VmRSS:")
    with torch.no_grad():
        samples = module.draw_samples(batch, SAMPLES)
    peak_mib = (_kib("VmHWM:") - before) / 1024
    assert samples.shape == (1, SAMPLES, 24, N) and torch.isfinite(samples).all()
    assert peak_mib < BUDGET_MIB, f"sampling N={N} jointly took {peak_mib:.0f} MiB"
