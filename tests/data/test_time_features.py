"""``data.time_features``: a chosen subset of GluonTS' time features, in the given order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gluonts.time_feature import time_features_from_frequency_str

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.data.errors import DataError
from probforecast.data.time_features import TIME_FEATURE_NAMES, time_features

START = pd.Period("1750-01-01 00:00", freq="h")


def test_default_is_gluonts_set_and_names_pick_columns_in_order():
    default = time_features(START, 200, "h")
    expected = [
        f(pd.period_range(START, periods=200, freq="h"))
        for f in time_features_from_frequency_str("h")
    ]
    np.testing.assert_array_equal(default, np.stack(expected, axis=1).astype(np.float32))
    picked = time_features(START, 200, "h", ["day_of_week", "hour_of_day"])
    np.testing.assert_array_equal(picked, default[:, [1, 0]])
    hour = picked[:, 1]
    assert hour[0] == -0.5 and hour[23] == 0.5 and hour[24] == -0.5  # hour 0..23 -> [-0.5, 0.5]
    assert time_features(START, 5, "h", []).shape == (5, 0)


@pytest.mark.parametrize("names", [["hour"], ["hour_of_day", "hour_of_day"]])
def test_unknown_or_repeated_names_raise_one_clear_error(names):
    message = f"data.time_features must be distinct names from {list(TIME_FEATURE_NAMES)}"
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ForecastDataModule("synthetic", context_length=8, prediction_length=4, time_features=names)
    with pytest.raises(DataError, match=f"got {names}".replace("[", r"\[").replace("]", r"\]")):
        time_features(START, 5, "h", names)


def test_datamodule_batches_carry_the_chosen_features():
    options = SyntheticOptions(num_series=3, length=120, num_test_windows=1)
    kwargs = dict(context_length=8, prediction_length=4, batch_size=2, synthetic=options)
    full = ForecastDataModule("synthetic", **kwargs)
    chosen = ForecastDataModule("synthetic", time_features=["day_of_year", "hour_of_day"], **kwargs)
    for dm in (full, chosen):
        dm.setup("test")
    assert chosen.num_time_features == 2 and full.num_time_features > 2
    names = [f.__name__ for f in time_features_from_frequency_str(full.freq)]
    columns = [names.index("day_of_year"), names.index("hour_of_day")]
    a, b = next(iter(full.test_dataloader())), next(iter(chosen.test_dataloader()))
    torch.testing.assert_close(b.past_time_feat, a.past_time_feat[..., columns], rtol=0, atol=0)
    torch.testing.assert_close(b.future_time_feat, a.future_time_feat[..., columns], rtol=0, atol=0)
    torch.testing.assert_close(b.past_target, a.past_target, rtol=0, atol=0)


def test_start_is_read_at_the_data_frequency_and_empty_sets_are_float32():
    """A coarser start is converted to the data frequency (pandas: at its last hour), not used
    as a daily index."""
    daily_start = pd.Period("1750-01-01", freq="D")
    last_hour = pd.Period("1750-01-01 23:00", freq="h")
    np.testing.assert_array_equal(
        time_features(daily_start, 30, "h", ["hour_of_day"]),
        time_features(last_hour, 30, "h", ["hour_of_day"]),
    )
    empty = time_features(START, 5, "h", [])
    assert empty.dtype == np.float32 and empty.shape == (5, 0)


def test_unsupported_frequency_names_it():
    with pytest.raises(DataError, match="unsupported frequency 'xyz'"):
        time_features(START, 5, "xyz")
