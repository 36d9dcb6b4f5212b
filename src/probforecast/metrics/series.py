r"""Per-series test metrics as one torchmetrics metric: an ``[N, 5]`` float64 sum state.

For every dataset series ``i`` (columns matched through ``series_ids``, so a batch may hold any
subset of the series) the state sums over windows and horizon steps, observed points only,

    ``CRPS``, ``|median - y|``, ``|y|``, ``1{y in the central level interval}``, ``1``,

and ``compute()`` returns ``[N, 5]`` ratios: ``crps = sum CRPS / count``, ``crps_norm = sum CRPS
/ sum |y|`` (GluonTS' weighted CRPS of one series), ``mae``, ``nmae = sum |err| / sum |y|``,
``coverage = hits / count``; NaN where a series has no observed point. States are sums reduced
with ``"sum"``, so the table is the same for any batch size and any number of processes (DDP).
"""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.metrics._base import ForecastMetric
from probforecast.metrics.functional import central_interval, crps, sample_quantiles
from probforecast.metrics.functional._validation import check_level

PARTS = ("crps", "abs_error", "abs_target", "hits", "count")


def series_columns(level: float) -> list[str]:
    """Column names of the table: ``series``, the five ratios (coverage named by its level in
    percent, e.g. ``coverage90``) and ``num_points``."""
    return ["series", "crps", "crps_norm", "mae", "nmae", f"coverage{level * 100:g}", "num_points"]


def point_parts(samples: Tensor, target: Tensor, mask: Tensor, level: float = 0.9) -> Tensor:
    r"""``samples [B, S, Q, N]``, ``target, mask [B, Q, N]`` -> ``[B, Q, N, 5]``: per point the
    ``PARTS`` times the observed mask (unobserved truths, even NaN, never reach a sum)."""
    mask = mask.bool()
    target = torch.where(mask, target, torch.zeros((), dtype=target.dtype, device=target.device))
    score = crps(samples, target, mask=mask)
    median = sample_quantiles(samples, (0.5,))[0]
    lower, upper = central_interval(samples, level)
    m = mask.to(samples.dtype)
    inside = ((lower <= target) & (target <= upper) & mask).to(samples.dtype)
    return torch.stack([score * m, (median - target).abs() * m, target.abs() * m, inside, m], -1)


def series_sums(parts: Tensor, series_ids: Tensor, num_series: int) -> Tensor:
    """Scatter ``point_parts [B, Q, N, 5]`` into per-dataset-series sums ``[num_series, 5]``
    (float64) by ``series_ids [B, N]``."""
    per_column = parts.sum(dim=1).double().reshape(-1, parts.shape[-1])  # [(B N), 5]
    sums = per_column.new_zeros(num_series, parts.shape[-1])
    return sums.index_add_(0, series_ids.reshape(-1).to(sums.device), per_column)


def series_ratios(sums: Tensor) -> Tensor:
    """``[N, 5]`` sums -> ``[N, 5]`` ratios (module docstring)."""
    crps_sum, err, scale, hits, count = sums.unbind(-1)
    nan = torch.full_like(count, float("nan"))

    def ratio(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(b > 0, a / b.clamp_min(1e-300), nan)

    return torch.stack(
        [
            ratio(crps_sum, count),
            ratio(crps_sum, scale),
            ratio(err, count),
            ratio(err, scale),
            ratio(hits, count),
        ],
        -1,
    )


def series_table_rows(sums: Tensor, names: list[str]) -> list[list]:
    """``[N, 5]`` sums -> rows of ``series_columns``: name, the five ratios, points."""
    ratios, count = series_ratios(sums), sums[:, -1]
    return [[names[i], *(float(v) for v in ratios[i]), int(count[i])] for i in range(sums.shape[0])]


class SeriesMetrics(ForecastMetric):
    """Per-series CRPS, normalised CRPS, MAE, NMAE and central-interval coverage (module
    docstring) of the ``num_series`` dataset series.

    Args:
        num_series: ``N`` of the dataset (``series_ids`` index it).
        level: central-interval level of the coverage column.
    """

    def __init__(self, num_series: int, level: float = 0.9, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_series, int) or num_series < 1:
            raise ValueError(f"num_series must be a positive integer; got {num_series!r}")
        self.num_series = num_series
        self.level = check_level(level)
        self.add_state(
            "sums",
            default=torch.zeros(num_series, len(PARTS), dtype=torch.float64),
            dist_reduce_fx="sum",
        )

    def update(self, samples: Tensor, target: Tensor, mask: Tensor, series_ids: Tensor) -> None:
        """``samples [B, S, Q, N]``, ``target, mask [B, Q, N]``, ``series_ids [B, N]``."""
        if series_ids.shape != target.shape[::2]:
            raise ValueError(
                f"series_ids must be [B, N] = {tuple(target.shape[::2])}; got "
                f"{tuple(series_ids.shape)}"
            )
        if int(series_ids.max()) >= self.num_series or int(series_ids.min()) < 0:
            raise ValueError(
                f"series_ids must lie in [0, {self.num_series}); got "
                f"[{int(series_ids.min())}, {int(series_ids.max())}]"
            )
        parts = point_parts(samples, target, mask, self.level)
        self.sums += series_sums(parts, series_ids, self.num_series)

    def compute(self) -> Tensor:
        """``[N, 5]`` float64 ratios (crps, crps_norm, mae, nmae, coverage)."""
        return series_ratios(self.sums)
