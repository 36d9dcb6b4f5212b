"""Fan charts of a fixed set of windows and series, at validation (every n epochs) and at test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
import torch

from probforecast.callbacks.figures import (
    fixed_window,
    log_figure,
    stage_suffix,
    trainer_datamodule,
)
from probforecast.viz import fan_chart

if TYPE_CHECKING:
    from probforecast.data.datamodule import ForecastDataModule
    from probforecast.models.module import ForecastModule

log = logging.getLogger(__name__)


class ForecastPlot(pl.Callback):
    """Draw samples for window ``window_index`` of the val/test split and plot ``num_series``
    series. PNG files go to ``<default_root_dir>/plots``; with a W&B logger the figure is also
    logged as an image (``<stage>/forecast``).

    Args:
        num_series: how many series (the first ones) to plot.
        window_index: which evaluation window (0 = first; -1 = last).
        every_n_val_epochs: plot at validation every n epochs (0 disables validation plots).
        num_samples: samples drawn for the plot.
    """

    def __init__(
        self,
        num_series: int = 4,
        window_index: int = 0,
        every_n_val_epochs: int = 1,
        num_samples: int = 100,
    ):
        self.num_series, self.window_index = num_series, window_index
        self.every_n_val_epochs, self.num_samples = every_n_val_epochs, num_samples
        self.last_paths: dict[str, Path] = {}

    def _plot(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        batch = fixed_window(trainer, stage, self.window_index, module.device)
        if batch is None:
            return
        forecast_module = cast("ForecastModule", module)  # the callback plots its draw_samples
        with torch.no_grad():
            samples = forecast_module.draw_samples(batch, self.num_samples)
            samples = batch.unscale(samples)[0].float().cpu()
        k = min(self.num_series, batch.num_series)
        history, truth = (x[0].cpu() for x in batch.raw_targets(unobserved_as_nan=True))
        # fixed_window found the window in it, so there is one; its series_names
        datamodule = cast("ForecastDataModule", trainer_datamodule(trainer))
        names = datamodule.series_names
        start = int(batch.window_start[0])
        titles = [f"{names[int(i)]} (window at t={start})" for i in batch.series_ids[0, :k]]
        p, q = history.shape[0], truth.shape[0]
        times = None
        if hasattr(datamodule, "timestamps") and start >= p:
            times = datamodule.timestamps(start - p, p + q).to_timestamp()
        fig = fan_chart(
            history[:, :k].numpy(),
            truth[:, :k].numpy(),
            samples[:, :, :k].numpy(),
            titles,
            max_history=4 * q,
            time_index=times,
        )
        filename = f"forecast_{stage}{stage_suffix(trainer, stage)}.png"
        self.last_paths[stage] = log_figure(trainer, fig, f"{stage}/forecast", filename)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_val_epochs <= 0:
            return
        if trainer.current_epoch % self.every_n_val_epochs == 0:
            self._plot(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._plot(trainer, pl_module, "test")
