"""``ForecastModule`` scores with what the batch carries: the normalised interval width divides
by ``ForecastBatch.series_std`` (raw scale, or over ``scale`` with ``metrics_on_scaled``)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GaussianRNN
from probforecast.models.module import ForecastModule


def central_width(samples: np.ndarray, level: float) -> np.ndarray:
    lower, upper = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return upper - lower  # [B, Q, N]


@pytest.mark.parametrize("on_scaled", [False, True])
def test_normalized_width_divides_by_the_batch_series_std(on_scaled):
    warnings.simplefilter("ignore")
    dm = ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=6,
        eval_batch_size=2,
        synthetic=SyntheticOptions(num_series=3, length=300, num_test_windows=3),
    )
    dm.setup("test")
    torch.manual_seed(0)
    forecaster = GaussianRNN(
        target_dim=3,
        context_length=24,
        prediction_length=6,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        hidden_size=4,
    )
    module = ForecastModule(
        forecaster,
        num_samples=50,
        metrics=["normalized_interval_width"],
        metrics_on_scaled=on_scaled,
    )
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (result,) = trainer.test(module, dm, verbose=False)
    module.eval()  # the test loop restores train mode when it ends
    total, count = 0.0, 0
    for batch in dm.test_dataloader():
        samples = module.draw_samples(batch, 50)
        if not on_scaled:
            samples = batch.unscale(samples)
        std = dm.series_test_std.expand_as(batch.scale)
        divisor = std / batch.scale if on_scaled else std
        width = central_width(samples.double().numpy(), 0.9)
        total += float((width / (divisor.double().numpy()[:, None, :] + 1e-8)).sum())
        count += width.size
    assert result["test/normalized_interval_width_90"] == pytest.approx(total / count, rel=1e-5)
