"""Ratio metrics with a choice of aggregation over windows: pooled sums or mean of window ratios."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from ._base import ForecastMetric

Aggregation = Literal["pooled", "window_mean"]
AGGREGATIONS: tuple[str, ...] = ("pooled", "window_mean")


def check_aggregation(aggregation: str) -> str:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {aggregation!r}")
    return aggregation


class WindowRatioMetric(ForecastMetric):
    r"""A metric :math:`a_w / b_w` from one numerator and a denominator per window ``w``.

    ``aggregation="pooled"`` (default): :math:`\sum_w a_w / \sum_w b_w` (every entry weighs the
    same, independent of the batch size). ``aggregation="window_mean"``: :math:`\frac1W\sum_w
    a_w / b_w` over the windows with at least one observed entry (ProbTS' evaluator and the GLS
    paper: the ratio of each forecast instance, then the mean over instances). If a window with
    observed entries has :math:`b_w = 0` (e.g. ``sum |y| = 0``) its ratio is undefined and
    ``compute`` raises.

    Subclasses pass every denominator they can divide by (``denominators``) and the one in use
    (``use``): all are accumulated, so metrics that differ only in the denominator (``crps`` and
    ``crps_unnormalized``) have identical states and can share one update in a collection.
    """

    def __init__(
        self,
        aggregation: Aggregation = "pooled",
        denominators: tuple[str, ...] = ("denominator",),
        use: str = "denominator",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aggregation = check_aggregation(aggregation)
        if use not in denominators:
            raise ValueError(f"use must be one of {denominators}; got {use!r}")
        self._denominators, self._use = denominators, use
        self._add_sum_state("numerator_total")
        self._add_sum_state("window_count")
        for name in denominators:
            self._add_sum_state(f"{name}_total")
            self._add_sum_state(f"window_ratio_{name}_total")
            self._add_sum_state(f"undefined_{name}_windows")

    def _accumulate(
        self, numerator: Tensor, denominators: dict[str, Tensor], observed: Tensor
    ) -> None:
        """Add per-window ``numerator [B]``, each ``denominators[name] [B]``; ``observed [B]`` bool."""
        numerator = numerator.double()
        self.numerator_total += numerator.sum()
        self.window_count += observed.sum(dtype=torch.float64)
        for name in self._denominators:
            den = denominators[name].double()
            setattr(self, f"{name}_total", getattr(self, f"{name}_total") + den.sum())
            defined = observed & (den > 0)
            ratio = torch.where(defined, numerator / torch.where(defined, den, 1.0), 0.0)
            total = f"window_ratio_{name}_total"
            setattr(self, total, getattr(self, total) + ratio.sum())
            undefined = f"undefined_{name}_windows"
            setattr(self, undefined, getattr(self, undefined) + (observed & ~defined).sum())

    def compute(self) -> Tensor:
        if self.aggregation == "pooled":
            return self._ratio(self.numerator_total, getattr(self, f"{self._use}_total"))
        if float(getattr(self, f"undefined_{self._use}_windows")) > 0:
            raise ValueError(
                f"{type(self).__name__} with aggregation='window_mean': "
                f"{int(getattr(self, f'undefined_{self._use}_windows'))} window(s) have a zero "
                f"{self._use} (e.g. sum |y| = 0), so their ratio is undefined; use "
                "aggregation='pooled'"
            )
        return self._ratio(getattr(self, f"window_ratio_{self._use}_total"), self.window_count)
