"""Model-specific views on the dashboard, through a small optional protocol.

A forecaster that has something to show overrides the contract's (empty) hook::

    def diagnostic_figures(self, batch: ForecastBatch) -> dict[str, matplotlib.figure.Figure]

``batch`` holds ONE evaluation window (scaled space, on the model's device, future included).
The method is called on global rank zero, in eval mode, under ``torch.no_grad`` and with the
global RNG state restored afterwards, so it may sample freely. Each figure ``name`` is logged as
``<stage>/views/<name>`` (W&B image) and saved as ``plots/<name>_<stage>[_epochNNN].png``.
Plot helpers live in ``probforecast.viz.model_views``. Forecasters that keep the default are
skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeGuard

import lightning.pytorch as pl
import torch

from probforecast.callbacks.figures import fixed_window, log_figure, stage_suffix
from probforecast.models.base import Forecaster

log = logging.getLogger(__name__)

PROTOCOL_METHOD = "diagnostic_figures"


def _has_views(forecaster: object) -> TypeGuard[Forecaster]:
    """A forecaster that overrides the contract's (empty) ``diagnostic_figures``."""
    return (
        isinstance(forecaster, Forecaster)
        and type(forecaster).diagnostic_figures is not Forecaster.diagnostic_figures
    )


class ModelViews(pl.Callback):
    """Log the forecaster's ``diagnostic_figures`` for a fixed window at validation (every
    ``every_n_val_epochs`` epochs; 0 disables) and at test.

    Args:
        window_index: which evaluation window (0 = first; -1 = last).
        every_n_val_epochs: validation frequency of the views.
    """

    def __init__(self, window_index: int = 0, every_n_val_epochs: int = 1) -> None:
        self.window_index, self.every_n_val_epochs = window_index, every_n_val_epochs
        self.last_paths: dict[str, Path] = {}

    def _views(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        forecaster = getattr(module, "forecaster", None)  # any LightningModule may carry this
        if not _has_views(forecaster) or not trainer.is_global_zero:
            return
        method = forecaster.diagnostic_figures
        batch = fixed_window(trainer, stage, self.window_index, module.device)
        if batch is None:
            return
        devices = [module.device] if module.device.type == "cuda" else []
        was_training = module.training
        module.eval()
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                figures = method(batch)
        finally:
            module.train(was_training)
        if not isinstance(figures, dict):
            raise TypeError(
                f"{type(module.forecaster).__name__}.{PROTOCOL_METHOD} must return a dict "
                f"name -> matplotlib Figure; got {type(figures).__name__}"
            )
        for name, figure in figures.items():
            filename = f"{name}_{stage}{stage_suffix(trainer, stage)}.png"
            key = f"{stage}/views/{name}"
            self.last_paths[key] = log_figure(trainer, figure, key, filename)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_val_epochs <= 0:
            return
        if trainer.current_epoch % self.every_n_val_epochs == 0:
            self._views(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._views(trainer, pl_module, "test")
