"""From a loaded dataset to what the window loaders slice: masked raw values, the split, the
scaler fitted on the training range, time features and each series' test-range spread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from probforecast.data.loading import LoadedDataset
from probforecast.data.scaling import ScalingKind, fit_scaler, observed_std
from probforecast.data.splits import Split
from probforecast.data.time_features import time_features
from probforecast.data.windows import SeriesWindows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedData:
    """Everything the loaders need, built once."""

    windows: SeriesWindows
    split: Split
    start: pd.Period
    raw_values: torch.Tensor  # [T, N] float64, NaN where unobserved
    series_names: list[str]


def prepare(
    loaded: LoadedDataset,
    make_split: Callable[[int, int, list[int]], Split],
    *,
    context_length: int,
    prediction_length: int,
    freq: str,
    scaling: ScalingKind,
    missing_values: list[float] | None,
    dataset_name: str,
    time_feature_names: list[str] | None = None,
) -> PreparedData:
    """Group the series (NaN where missing; ``missing_values`` sentinels masked too), split with
    ``make_split(length, train_length, test_lengths)``, fit the scaler on the training range and
    build the windows, which carry each series' std over the test range and the time features
    ``time_feature_names`` (``None``: GluonTS' set for ``freq``)."""
    grouped = loaded.arrays
    values, start = grouped.values, grouped.start
    train_length, test_lengths = grouped.train_length, grouped.test_lengths
    if missing_values:
        sentinel = np.isin(values, missing_values)
        log.info("data.missing_values: %d entries masked", int(sentinel.sum()))
        values = np.where(sentinel, np.nan, values)
    split = make_split(values.shape[0], train_length, test_lengths)
    split.check(context_length, prediction_length, dataset_name)
    raw = torch.from_numpy(values)
    observed = torch.isfinite(raw)
    if not observed.all():
        log.info(
            "%d values are missing or non-finite; they are masked (observed=False)",
            int((~observed).sum()),
        )
    loc, scale = fit_scaler(raw[: split.train_end], observed[: split.train_end], scaling)
    feats = torch.from_numpy(
        time_features(pd.Period(start), values.shape[0], freq, time_feature_names)
    )
    test_range = raw[split.test_starts[0] : split.test_starts[-1] + prediction_length]
    windows = SeriesWindows(
        raw,
        feats,
        loc,
        scale,
        context_length,
        prediction_length,
        series_std=observed_std(test_range),
    )
    return PreparedData(windows, split, pd.Period(start), raw, list(grouped.names))
