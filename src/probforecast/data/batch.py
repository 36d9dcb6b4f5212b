"""The batch contract shared by every forecaster (see DESIGN.md, "Contracts").

All values are in *scaled* space. Axes: ``B`` windows, ``P`` context length, ``Q`` horizon,
``N`` series in the batch, ``F`` time features.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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

    @property
    def batch_size(self) -> int:
        return self.past_target.shape[0]

    @property
    def num_series(self) -> int:
        return self.past_target.shape[-1]

    def to(self, device: torch.device | str) -> ForecastBatch:
        return ForecastBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select_series(self, index: slice | Tensor) -> ForecastBatch:
        """The same windows restricted to the series ``index`` picks on the ``N`` axis (a slice
        or a long index tensor); time features and window starts are shared by all series."""
        return ForecastBatch(
            **{
                f.name: getattr(self, f.name)[..., index]
                if f.name in _SERIES_FIELDS
                else getattr(self, f.name)
                for f in fields(self)
            }
        )

    def select_windows(self, index: slice) -> ForecastBatch:
        """The windows ``index`` picks on the batch axis (every field sliced on axis 0)."""
        return ForecastBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def unscale(self, x: Tensor) -> Tensor:
        """Map scaled values ``[B, ..., N]`` (any middle axes) back to the raw scale."""
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return x * self.scale.reshape(shape) + self.loc.reshape(shape)


def collate_windows(items: list[dict[str, Tensor]]) -> ForecastBatch:
    """Stack per-window dicts (as produced by the window datasets) into a ``ForecastBatch``."""
    return ForecastBatch(**default_collate(items))
