"""Window datasets sliced directly from the dataset tensors (no GluonTS transformation chain).

Every item is a dict matching ``ForecastBatch``; ``collate_windows`` stacks them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset


class SeriesWindows:
    """Scaled series tensors plus the slicing logic shared by the window datasets.

    Args:
        values: ``[T, N]`` raw values, NaN where unobserved.
        time_feat: ``[T, F]`` time features.
        loc, scale: ``[N]`` scaler fitted on the training range.
        context_length: ``P``. prediction_length: ``Q``.
        series_std: ``[N]`` raw-scale spread of each series that windows carry for normalised
            metrics (``ForecastBatch.series_std``); ``None``: windows carry none.
    """

    def __init__(
        self,
        values: Tensor,
        time_feat: Tensor,
        loc: Tensor,
        scale: Tensor,
        context_length: int,
        prediction_length: int,
        series_std: Tensor | None = None,
    ) -> None:
        self.observed = torch.isfinite(values)
        self.series_std = None if series_std is None else series_std.float()
        scaled = (values - loc) / scale
        self.scaled = torch.where(self.observed, scaled, torch.zeros_like(scaled)).float()
        self.time_feat = time_feat.float()
        self.loc, self.scale = loc.float(), scale.float()
        self.context_length, self.prediction_length = context_length, prediction_length

    @property
    def num_series(self) -> int:
        return self.scaled.shape[1]

    def window(self, start: int, series: Tensor | None = None) -> dict[str, Tensor]:
        """The window whose horizon starts at ``start``; ``series`` selects columns (all if None)."""
        p, q = self.context_length, self.prediction_length
        cols = series if series is not None else torch.arange(self.num_series)
        past, future = slice(start - p, start), slice(start, start + q)
        item = {
            "past_target": self.scaled[past][:, cols],
            "past_observed": self.observed[past][:, cols],
            "past_time_feat": self.time_feat[past],
            "future_time_feat": self.time_feat[future],
            "future_target": self.scaled[future][:, cols],
            "future_observed": self.observed[future][:, cols],
            "series_ids": cols.long(),
            "loc": self.loc[cols],
            "scale": self.scale[cols],
            "window_start": torch.tensor(start, dtype=torch.long),
        }
        if self.series_std is not None:
            item["series_std"] = self.series_std[cols]
        return item


class TrainingWindows(Dataset):
    """Random training windows, drawn through the index so that any sampler seed and any number
    of workers give the same windows.

    Index ``i`` encodes a start ``first + i % num_starts`` and, when ``num_series_per_batch`` is
    set, a random subset of series seeded by ``i // num_starts``. All windows of one batch share
    the subset size so that they stack; which series differ per window.
    """

    SUBSET_SEEDS = 1 << 20

    def __init__(
        self, windows: SeriesWindows, train_end: int, num_series_per_batch: int | None, seed: int
    ):
        self.windows = windows
        self.first = windows.context_length
        self.num_starts = train_end - windows.prediction_length - self.first + 1
        assert self.num_starts > 0, "Split.check guarantees one training window"
        self.num_series_per_batch = num_series_per_batch
        self.seed = seed

    def __len__(self) -> int:
        seeds = self.SUBSET_SEEDS if self.num_series_per_batch else 1
        return self.num_starts * seeds

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        start = self.first + index % self.num_starts
        series = None
        if self.num_series_per_batch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index // self.num_starts)
            series = torch.randperm(self.windows.num_series, generator=gen)[
                : self.num_series_per_batch
            ]
            series = series.sort().values
        return self.windows.window(start, series)


class EvaluationWindows(Dataset):
    """Rolling evaluation windows over all series at the given forecast starts."""

    def __init__(self, windows: SeriesWindows, starts: tuple[int, ...]):
        self.windows, self.starts = windows, starts

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.windows.window(self.starts[index])
