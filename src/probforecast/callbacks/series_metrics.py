"""A table of per-series test metrics: one row per dataset series, logged at the end of test
(W&B table ``test/series_metrics`` and ``tables/test_series_metrics.csv``)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor

from probforecast.callbacks.figures import log_table
from probforecast.metrics.functional import central_interval, crps, sample_quantiles

log = logging.getLogger(__name__)

COLUMNS = ["series", "crps", "crps_norm", "mae", "nmae", "coverage90", "num_points"]


def point_parts(samples: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    r"""``samples [B, S, Q, N]``, ``target, mask [B, Q, N]`` -> ``[B, Q, N, 5]``: per point
    ``CRPS, |median - y|, |y|, 1{y in the central 90 % interval}, 1`` times the observed mask.
    Their sums over windows and horizon per series are what ``series_table_rows`` divides."""
    mask = mask.bool()
    target = torch.where(mask, target, torch.zeros((), dtype=target.dtype, device=target.device))
    score = crps(samples, target, mask=mask)
    median = sample_quantiles(samples, (0.5,))[0]
    lower, upper = central_interval(samples, 0.9)
    m = mask.to(samples.dtype)
    inside = ((lower <= target) & (target <= upper) & mask).to(samples.dtype)
    return torch.stack([score * m, (median - target).abs() * m, target.abs() * m, inside, m], -1)


def series_sums(parts: Tensor, series_ids: Tensor, num_series: int) -> Tensor:
    """Scatter ``point_parts [B, Q, N, 5]`` into per-dataset-series sums ``[num_series, 5]``
    (float64) by ``series_ids [B, N]`` (a batch's columns may be any subset of the series)."""
    per_column = parts.sum(dim=1).double().reshape(-1, parts.shape[-1])  # [(B N), 5]
    sums = per_column.new_zeros(num_series, parts.shape[-1])
    return sums.index_add_(0, series_ids.reshape(-1).to(sums.device), per_column)


def series_table_rows(sums: Tensor, names: list[str]) -> list[list]:
    """``[N, 5]`` sums -> rows of ``COLUMNS``: ``crps = sum CRPS / count``, ``crps_norm = sum
    CRPS / sum |y|`` (GluonTS' weighted CRPS of one series), ``mae``, ``nmae = sum |err| /
    sum |y|``, ``coverage90 = hits / count``; NaN where a series has no observed point."""
    crps_sum, err, scale, hits, count = sums.unbind(-1)
    nan = torch.tensor(float("nan"), dtype=sums.dtype)

    def ratio(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(b > 0, a / b.clamp_min(1e-300), nan)

    columns = [
        ratio(crps_sum, count),
        ratio(crps_sum, scale),
        ratio(err, count),
        ratio(err, scale),
        ratio(hits, count),
    ]
    return [
        [names[i], *(float(c[i]) for c in columns), int(count[i])] for i in range(sums.shape[0])
    ]


class SeriesMetricsTable(pl.Callback):
    """Accumulate ``series_sums`` over the test windows and log the table at the end of test.

    It reuses the test step's samples when ``test_step`` returns them and otherwise draws them
    again with ``ForecastModule.draw_samples``, which is seeded per batch, so the samples (and
    the table) are those of the logged ``test/*`` metrics. Metrics are in raw units, or scaled
    ones with ``model.metrics_on_scaled``.

    Args:
        enabled: set False to skip the table (it costs one more sampling pass when the test
            step does not return its samples).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.sums: Tensor | None = None
        self.last_path: Path | None = None

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.sums = None

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not self.enabled or trainer.datamodule is None:
            return
        if isinstance(outputs, Tensor) and outputs.dim() == 4:
            samples = outputs
        else:
            with torch.no_grad():
                samples = pl_module.draw_samples(batch, pl_module.num_samples)
        target = batch.future_target
        if not getattr(pl_module, "metrics_on_scaled", False):
            samples, target = batch.unscale(samples), batch.unscale(target)
        parts = point_parts(samples, target, batch.future_observed)
        sums = series_sums(parts, batch.series_ids, trainer.datamodule.target_dim)
        self.sums = sums if self.sums is None else self.sums + sums

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if not self.enabled or trainer.datamodule is None:
            return
        sums = self.sums
        if sums is None:  # no test batch on this rank: still join the reduction
            if trainer.world_size == 1:
                return
            sums = torch.zeros(trainer.datamodule.target_dim, 5, dtype=torch.float64)
        sums = trainer.strategy.reduce(sums.to(pl_module.device), reduce_op="sum")
        if not trainer.is_global_zero:
            return
        rows = series_table_rows(sums.cpu(), list(trainer.datamodule.series_names))
        self.last_path = log_table(
            trainer, "test/series_metrics", COLUMNS, rows, "test_series_metrics.csv"
        )
