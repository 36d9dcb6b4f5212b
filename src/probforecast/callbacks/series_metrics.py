"""A table of per-series test metrics: one row per dataset series, logged at the end of test
(W&B table ``test/series_metrics`` and ``tables/test_series_metrics.csv``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import lightning.pytorch as pl

from probforecast.callbacks.figures import log_table, trainer_datamodule
from probforecast.metrics.series import series_columns, series_table_rows

if TYPE_CHECKING:
    from probforecast.models.module import ForecastModule


def _forecast_module(pl_module: pl.LightningModule) -> ForecastModule:
    from probforecast.models.module import ForecastModule

    if not isinstance(pl_module, ForecastModule):
        raise TypeError(
            f"SeriesMetricsTable logs a ForecastModule's per-series metrics; got "
            f"{type(pl_module).__name__}"
        )
    return pl_module


log = logging.getLogger(__name__)


class SeriesMetricsTable(pl.Callback):
    """Log ``ForecastModule.test_series_metrics`` (a ``SeriesMetrics``: per-series CRPS,
    normalised CRPS, MAE, NMAE, central-interval coverage at the module's ``interval_level``)
    as a table at the end of test. The metric is updated by the test step with the samples of
    the logged ``test/*`` metrics (drawn once) and reduced across processes by torchmetrics;
    raw units, or scaled ones with ``model.metrics_on_scaled``.

    Args:
        enabled: set False to log no table.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.last_path: Path | None = None

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and _forecast_module(pl_module).test_series_metrics is None:
            raise ValueError(
                "SeriesMetricsTable(enabled=True) logs ForecastModule.test_series_metrics, but "
                "the module was built with series_metrics=False; build it with "
                "series_metrics=True or pass SeriesMetricsTable(enabled=False)"
            )

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metric = _forecast_module(pl_module).test_series_metrics
        if not self.enabled or metric is None:
            return
        with metric.sync_context():  # the cross-process sum, on every rank
            sums = metric.sums.clone()
        if not trainer.is_global_zero:
            return
        names = getattr(trainer_datamodule(trainer), "series_names", None)
        names = list(names) if names is not None else [str(i) for i in range(metric.num_series)]
        rows = series_table_rows(sums.cpu(), names)
        columns = series_columns(metric.level)
        self.last_path = log_table(
            trainer, "test/series_metrics", columns, rows, "test_series_metrics.csv"
        )
