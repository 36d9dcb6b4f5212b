"""Time features for a frequency, from ``gluonts.time_feature``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from gluonts import time_feature
from gluonts.time_feature import time_features_from_frequency_str

from probforecast.data.errors import DataError

#: The GluonTS features ``data.time_features`` may name; each maps periods into [-0.5, 0.5].
TIME_FEATURE_NAMES = (
    "second_of_minute",
    "minute_of_hour",
    "hour_of_day",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "week_of_year",
    "month_of_year",
)


def _features(freq: str, names: list[str] | None) -> list[Callable[[pd.PeriodIndex], np.ndarray]]:
    """The named GluonTS features, or GluonTS' default set for ``freq`` when ``names`` is None."""
    if names is None:
        try:
            return time_features_from_frequency_str(freq)
        except (ValueError, RuntimeError) as err:
            raise DataError(f"unsupported frequency {freq!r}: {err}") from err
    check_time_feature_names(names)
    return [getattr(time_feature, n) for n in names]


def check_time_feature_names(names: list[str] | None) -> None:
    """Raise ``DataError`` unless ``names`` is None or distinct names of ``TIME_FEATURE_NAMES``."""
    if names is None:
        return
    if any(n not in TIME_FEATURE_NAMES for n in names) or len(set(names)) != len(names):
        raise DataError(
            f"data.time_features must be distinct names from {list(TIME_FEATURE_NAMES)}, or null "
            f"(GluonTS' features for the frequency); got {names}"
        )


def time_features(
    start: pd.Period, length: int, freq: str, names: list[str] | None = None
) -> np.ndarray:
    """``[T, F]`` GluonTS time features (each in [-0.5, 0.5]) of ``length`` periods from ``start``:
    those of ``names`` in that order, or GluonTS' set for ``freq`` (``None``; hourly: hour of
    day, day of week, day of month, day of year)."""
    features = _features(freq, names)
    index = pd.period_range(pd.Period(start, freq=freq), periods=length, freq=freq)
    if not features:
        return np.zeros((length, 0), dtype=np.float32)
    return np.stack([f(index) for f in features], axis=1).astype(np.float32)


def num_time_features(freq: str, names: list[str] | None = None) -> int:
    return len(_features(freq, names))
