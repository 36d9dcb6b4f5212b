"""Small float64 GLS forecasters and batches shared by the GLS reference tests."""

from __future__ import annotations

import dataclasses

import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.data.batch import ForecastBatch
from probforecast.models import GPVar, TransformerForecaster

BACKBONES = {"gpvar": GPVar, "transformer": TransformerForecaster}


def double_training_batch(
    context_length: int, prediction_length: int, num_series: int
) -> tuple[ForecastBatch, ForecastDataModule]:
    """The first training batch (2 windows) of the built-in synthetic data, in float64."""
    dm = ForecastDataModule(
        "synthetic",
        context_length=context_length,
        prediction_length=prediction_length,
        batch_size=2,
        synthetic=SyntheticOptions(num_series=num_series, length=200, num_test_windows=1),
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    floats = {
        f.name: value.double()
        for f in dataclasses.fields(batch)
        if (value := getattr(batch, f.name)) is not None and value.is_floating_point()
    }
    return dataclasses.replace(batch, **floats), dm


def small_gls_model(
    kind: str,
    dm: ForecastDataModule,
    seed: int,
    spread: bool,
    lags: list[int] | None = None,
    **kwargs,
):
    """A float64 GPVar / Transformer (hidden 8, rank 2, ``lags`` default [1, 2], no dropout) in
    eval mode;
    the GLS mixture weights are pushed away from uniform (bias 2, 1, -2) and, with ``spread``,
    their projection randomised, so that ``C`` is clearly not the identity."""
    torch.manual_seed(seed)
    model = BACKBONES[kind](
        target_dim=dm.target_dim,
        context_length=dm.context_length,
        prediction_length=dm.prediction_length,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        hidden_size=8,
        rank=2,
        lags=lags or [1, 2],
        dropout=0.0,
        **kwargs,
    )
    if model.correlation is not None and model.correlation.kind == "kernel":
        with torch.no_grad():
            if spread:
                model.correlation.weight_head.proj.weight.normal_(0.0, 0.3)
            model.correlation.weight_head.proj.bias.copy_(torch.tensor([2.0, 1.0, -2.0]))
    return model.double().eval()
