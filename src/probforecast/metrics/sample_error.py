"""The paper's ProbMSE / ProbMAE of CW-Gen (per-sample errors averaged over samples) as metrics."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import ForecastMetric
from .functional.sample_error import sample_error_sums


class _SampleAveragedError(ForecastMetric):
    """Shared summed states, so ProbMSE and ProbMAE can share one update."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_sum_state("squared_error_total")
        self._add_sum_state("abs_error_total")
        self._add_sum_state("count")

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        sums = sample_error_sums(samples, target, mask=mask)
        self.squared_error_total += sums.squared_error
        self.abs_error_total += sums.absolute_error
        self.count += sums.num_observed


class ProbMSE(_SampleAveragedError):
    r"""CW-Gen's ProbMSE as the paper defines it, :math:`\overline{\tfrac1S\sum_s (x_s - y)^2}`
    (the official code's variant, the MSE of the sample mean, is ``MSE``)."""

    def compute(self) -> Tensor:
        return self._ratio(self.squared_error_total, self.count)


class ProbMAE(_SampleAveragedError):
    r"""CW-Gen's ProbMAE as the paper defines it, :math:`\overline{\tfrac1S\sum_s |x_s - y|}`
    (the official code's variant, the MAE of the sample mean, is ``MAE``)."""

    def compute(self) -> Tensor:
        return self._ratio(self.abs_error_total, self.count)
