"""The batch contract shared by every forecaster (see DESIGN.md, "Contracts").

All values are in *scaled* space. Axes: ``B`` windows, ``P`` context length, ``Q`` horizon,
``N`` series in the batch, ``F`` time features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

_SERIES_FIELDS = frozenset(
    {
        "past_target",
        "past_observed",
        "future_target",
        "future_observed",
        "series_ids",
        "loc",
        "scale",
        "series_std",
    }
)
"""The fields whose last axis is ``N`` (the series)."""


@dataclass
class ForecastBatch:
    """One batch of forecast windows.

    Attributes:
        past_target: ``[B, P, N]`` scaled history; unobserved entries are 0, never NaN.
        past_observed: ``[B, P, N]`` bool, True where the history was observed.
        past_time_feat: ``[B, P, F]`` time features of the history.
        future_time_feat: ``[B, Q, F]`` time features of the horizon.
        future_target: ``[B, Q, N]`` scaled truth of the horizon (0 where unobserved).
        future_observed: ``[B, Q, N]`` bool.
        series_ids: ``[B, N]`` long, which dataset series each column is.
        loc: ``[B, N]`` scaler location: ``raw = scaled * scale + loc``.
        scale: ``[B, N]`` scaler scale (> 0).
        window_start: ``[B]`` long, time index of the first horizon step in the dataset tensor.
        series_std: ``[B, N]`` raw-scale standard deviation of each series over the test range,
            what normalised metrics divide by (VolDy-VAE's normalised interval width); ``None``
            when the data source does not provide it.
    """

    past_target: Tensor
    past_observed: Tensor
    past_time_feat: Tensor
    future_time_feat: Tensor
    future_target: Tensor
    future_observed: Tensor
    series_ids: Tensor
    loc: Tensor
    scale: Tensor
    window_start: Tensor
    series_std: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.past_target.shape[0]

    @property
    def num_series(self) -> int:
        return self.past_target.shape[-1]

    def to(self, device: torch.device | str) -> ForecastBatch:
        return self._map(lambda name, value: value.to(device))

    def select_series(self, index: slice | Tensor) -> ForecastBatch:
        """The same windows restricted to the series ``index`` picks on the ``N`` axis (a slice
        or a long index tensor); time features and window starts are shared by all series."""
        return self._map(lambda name, value: value[..., index] if name in _SERIES_FIELDS else value)

    def select_windows(self, index: slice) -> ForecastBatch:
        """The windows ``index`` picks on the batch axis (every field sliced on axis 0)."""
        return self._map(lambda name, value: value[index])

    def _map(self, fn: Callable[[str, Tensor], Tensor]) -> ForecastBatch:
        """A batch with ``fn(name, tensor)`` applied to every field present (``None`` kept)."""
        mapped: dict[str, Any] = {
            f.name: None if (value := getattr(self, f.name)) is None else fn(f.name, value)
            for f in fields(self)
        }
        return ForecastBatch(**mapped)

    def unscale(self, x: Tensor) -> Tensor:
        """Map scaled values ``[B, ..., N]`` (any middle axes) back to the raw scale."""
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return x * self.scale.reshape(shape) + self.loc.reshape(shape)

    def raw_targets(self, unobserved_as_nan: bool = False) -> tuple[Tensor, Tensor]:
        """``(past [B, P, N], future [B, Q, N])`` truths on the raw scale; with
        ``unobserved_as_nan`` unobserved entries are NaN (for display and export) instead of
        the raw value of the scaled 0 the batch holds there."""
        past, future = self.unscale(self.past_target), self.unscale(self.future_target)
        if unobserved_as_nan:
            past = torch.where(self.past_observed, past, torch.nan)
            future = torch.where(self.future_observed, future, torch.nan)
        return past, future

    def spread(self, scaled: bool) -> Tensor | None:
        """``series_std`` ``[B, N]`` on the raw scale, or divided by ``scale`` for metrics
        computed on the scaled values; ``None`` when the batch carries none."""
        if self.series_std is None:
            return None
        return self.series_std / self.scale if scaled else self.series_std


def collate_windows(items: list[dict[str, Tensor]]) -> ForecastBatch:
    """Stack per-window dicts (as produced by the window datasets) into a ``ForecastBatch``."""
    return ForecastBatch(**default_collate(items))
