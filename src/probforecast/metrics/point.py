"""Point-forecast metrics of sample forecasts: NMAE (median), NRMSE, MSE and MAE (sample mean)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import ForecastMetric
from ._ratio import Aggregation, WindowRatioMetric, check_aggregation
from .functional._validation import check_forecast
from .functional._window_sums import window_observed
from .functional.point import (
    PointErrorSums,
    median_forecast,
    window_point_sums,
)


class NMAE(WindowRatioMetric):
    r"""Normalised MAE of the sample median, :math:`\sum|\tilde x - y| / \sum|y|` (ProbTS "ND", VolDy-VAE NMAE).

    ``aggregation="pooled"`` divides sums over all windows; ``"window_mean"`` averages each
    window's ratio (ProbTS' evaluator).
    """

    def __init__(self, aggregation: Aggregation = "pooled", **kwargs: Any) -> None:
        super().__init__(aggregation, ("abs_target",), "abs_target", **kwargs)

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        sums = window_point_sums(median_forecast(samples), target, mask)
        self._accumulate(
            sums.absolute_error, {"abs_target": sums.absolute_target}, window_observed(target, mask)
        )


class _SampleMeanError(ForecastMetric):
    """Shared states of the sample-mean errors, so that MSE, MAE and NRMSE can share one update.

    Pooled sums and the sums of per-window values are both kept (identical states whatever the
    ``aggregation``); ``aggregation="window_mean"`` averages each window's value over the windows
    with an observed entry (ProbTS' evaluator), ``"pooled"`` divides sums over all windows.
    """

    def __init__(self, aggregation: Aggregation = "pooled", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aggregation = check_aggregation(aggregation)
        for name in ("squared_error", "abs_error", "abs_target", "count"):
            self._add_sum_state(f"{name}_total")
        for name in ("mse", "mae", "nrmse", "count", "undefined_nrmse"):
            self._add_sum_state(f"window_{name}_total")

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        sums: PointErrorSums = window_point_sums(samples.mean(1), target, mask)
        self.squared_error_total += sums.squared_error.sum()
        self.abs_error_total += sums.absolute_error.sum()
        self.abs_target_total += sums.absolute_target.sum()
        self.count_total += sums.num_observed.sum()
        observed = sums.num_observed > 0
        count = torch.where(observed, sums.num_observed, 1.0)
        mse = sums.squared_error / count
        defined = observed & (sums.absolute_target > 0)
        nrmse = mse.sqrt() / torch.where(defined, sums.absolute_target / count, 1.0)
        self.window_mse_total += torch.where(observed, mse, 0.0).sum()
        self.window_mae_total += torch.where(observed, sums.absolute_error / count, 0.0).sum()
        self.window_nrmse_total += torch.where(defined, nrmse, 0.0).sum()
        self.window_count_total += observed.sum(dtype=torch.float64)
        self.window_undefined_nrmse_total += (observed & ~defined).sum(dtype=torch.float64)

    def _window_mean(self, name: str) -> Tensor:
        return self._ratio(getattr(self, f"window_{name}_total"), self.window_count_total)


class MSE(_SampleMeanError):
    r"""MSE of the sample mean, :math:`\overline{(\bar x - y)^2}` (CW-Gen's ProbMSE as coded)."""

    def compute(self) -> Tensor:
        if self.aggregation == "window_mean":
            return self._window_mean("mse")
        return self._ratio(self.squared_error_total, self.count_total)


class MAE(_SampleMeanError):
    r"""MAE of the sample mean, :math:`\overline{|\bar x - y|}` (CW-Gen's ProbMAE as coded)."""

    def compute(self) -> Tensor:
        if self.aggregation == "window_mean":
            return self._window_mean("mae")
        return self._ratio(self.abs_error_total, self.count_total)


class NRMSE(_SampleMeanError):
    r"""RMSE of the sample mean over the mean absolute target, :math:`\sqrt{\overline{(\bar x - y)^2}}/\overline{|y|}` (ProbTS).

    ``window_mean``: this ratio per window, then the mean over windows (ProbTS); a window with
    observed entries and ``sum |y| = 0`` makes ``compute`` raise.
    """

    def compute(self) -> Tensor:
        if self.aggregation == "window_mean":
            if float(self.window_undefined_nrmse_total) > 0:
                raise ValueError(
                    f"NRMSE with aggregation='window_mean': {int(self.window_undefined_nrmse_total)}"
                    " window(s) have sum |y| = 0, so their ratio is undefined; use "
                    "aggregation='pooled'"
                )
            return self._window_mean("nrmse")
        rmse = self._ratio(self.squared_error_total, self.count_total).sqrt()
        return self._ratio(rmse, self._ratio(self.abs_target_total, self.count_total))
