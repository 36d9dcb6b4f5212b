"""Common base of the stateful metrics: summed float64 states, ratio with a NaN guard."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torchmetrics import Metric

from .functional._threads import metric_threads


class ForecastMetric(Metric):
    """A torchmetrics ``Metric`` over ``samples [B, S, Q, N]``, ``target [B, Q, N]``, ``mask [B, Q, N]``.

    Every state is a float64 sum reduced with ``"sum"`` across processes, so the value does not
    depend on the batch size or the number of processes. ``compute()`` returns a float64 scalar,
    NaN when its denominator is zero (never updated, every entry masked, or ``sum |y| = 0`` for
    a normalised metric). On Apple MPS (no float64) call ``metric.set_dtype(torch.float32)``
    before moving it to the device.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = False
    plot_lower_bound: float | None = 0.0

    def __init_subclass__(cls, **kwargs) -> None:
        """Every subclass' ``update`` runs under ``metric_threads`` (one torch thread on CPU by
        default; see ``functional/_threads.py``)."""
        super().__init_subclass__(**kwargs)
        update = cls.__dict__.get("update")
        if update is None or getattr(update, "_runs_in_metric_threads", False):
            return

        @functools.wraps(update)
        def update_in_metric_threads(self, samples: Tensor, *args, **kwargs):
            with metric_threads(samples.device):
                return update(self, samples, *args, **kwargs)

        update_in_metric_threads._runs_in_metric_threads = True  # type: ignore[attr-defined]
        cls.update = update_in_metric_threads  # type: ignore[method-assign]

    if TYPE_CHECKING:  # states are registered by name; nn.Module types them Tensor | Module

        def __getattr__(self, name: str) -> Tensor: ...

    def _add_sum_state(self, name: str, size: int | None = None) -> None:
        shape = () if size is None else (size,)
        self.add_state(name, default=torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    @staticmethod
    def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
        nan = torch.full_like(numerator, float("nan"))
        return torch.where(denominator > 0, numerator / denominator, nan)

    @staticmethod
    def _count(target: Tensor, mask: Tensor | None) -> Tensor:
        """Number of observed entries as a float64 scalar, without a host sync."""
        if mask is None:
            return torch.tensor(float(target.numel()), dtype=torch.float64, device=target.device)
        return mask.sum(dtype=torch.float64)
