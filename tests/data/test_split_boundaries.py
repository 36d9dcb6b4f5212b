"""Boundaries of the split protocols (each check accepts its limit and refuses one step past
it) and the exact error messages, against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from probforecast.data import DataError
from probforecast.data.splits import (
    Split,
    _thin,
    border_split,
    consecutive_split,
    ett_borders,
    probts_rolling_starts,
    ratio_borders,
    rolling_split,
)


def test_split_check_accepts_exactly_enough_training_steps_and_context():
    Split(train_end=30, val_starts=(24,), test_starts=(40,)).check(24, 6, "d")  # 30 = 24 + 6
    with pytest.raises(
        DataError,
        match=r"'d': context_length \+ prediction_length = 30 does not fit in its training range of 29 steps",
    ):
        Split(train_end=29, val_starts=(24,), test_starts=(40,)).check(24, 6, "d")
    with pytest.raises(DataError, match="does not fit"):
        Split(train_end=20, val_starts=(), test_starts=(40,)).check(
            24, 6, "d"
        )  # P - Q < 20 < P + Q


def test_split_check_first_window_may_start_exactly_after_the_context():
    Split(30, (), (24,)).check(24, 6, "d")
    with pytest.raises(
        DataError,
        match=r"'d': the first evaluation window starts at step 23, before the context_length of 24",
    ):
        Split(30, (23,), (40,)).check(24, 6, "d")
    with pytest.raises(DataError, match=r"'d': the protocol leaves no test window"):
        Split(30, (), ()).check(24, 6, "d")


def test_thin_keeps_all_windows_up_to_the_limit_and_the_last_for_one():
    assert _thin([1, 2, 3], 3) == (1, 2, 3)
    assert _thin([1, 2, 3, 4, 5], 3) == (1, 3, 5)
    assert _thin([1, 2, 3, 4, 5], 1) == (5,)
    assert _thin([1, 2, 3], None) == (1, 2, 3)


def test_rolling_split_validation_windows_are_consecutive_horizons():
    split = rolling_split(100, [124, 148], 24, num_val_windows=3)
    assert split.val_starts == (28, 52, 76) and split.train_end == 28
    assert split.test_starts == (100, 124)
    no_val = rolling_split(100, [124], 24, num_val_windows=0)
    assert no_val.val_starts == () and no_val.train_end == 100


def test_border_split_strides_and_thinning():
    split = border_split((100, 40, 40), 10, val_stride=10, test_stride=5, max_test_windows=3)
    assert split.val_starts == (100, 110, 120, 130)
    assert split.test_starts == (140, 155, 170)  # 7 starts 140..170 thinned to 3


def test_probts_rolling_length_one_is_accepted_and_zero_refused():
    assert probts_rolling_starts(10, 15, 2, 1) == [10, 11, 12]
    with pytest.raises(DataError, match=r"the rolling length must be >= 1; got 0"):
        probts_rolling_starts(10, 15, 2, 0)


def test_ett_borders_fit_exactly_and_name_the_shortfall():
    assert ett_borders(14400, 1) == (8640, 2880, 2880)
    with pytest.raises(DataError, match=r"ETT protocol needs 14400 steps; the file has 14399"):
        ett_borders(14399, 1)


def test_ratio_borders_accept_a_zero_ratio_and_refuse_a_wrong_count():
    assert ratio_borders(100, (0.8, 0.0, 0.2)) == (80, 0, 20)
    with pytest.raises(DataError, match="three non-negative numbers summing to 1"):
        ratio_borders(100, (0.5, 0.5))  # sums to 1, non-negative, but two of them
    with pytest.raises(DataError, match="three non-negative numbers summing to 1"):
        ratio_borders(100, (0.7, 0.1, 0.21))


def test_consecutive_split_at_its_minimum_length_and_the_message_one_below():
    # 2 (Q + r - 1) = 2 (3 + 2 - 1) = 8 steps of validation and test, plus training step 0
    split = consecutive_split(9, 3, 2)
    assert split.train_end == 1 and split.val_starts == (1, 2) and split.test_starts == (5, 6)
    with pytest.raises(
        DataError,
        match=r"needs 2 x \(prediction_length \+ num_test_windows - 1\) = 8 steps for validation and test; the series has 8",
    ):
        consecutive_split(8, 3, 2)


def _series_windows(t: int = 40, n: int = 6, p: int = 8, q: int = 4):
    from probforecast.data.windows import SeriesWindows

    values = torch.arange(t * n, dtype=torch.float64).reshape(t, n)
    return SeriesWindows(values, torch.zeros(t, 1), torch.zeros(n), torch.ones(n), p, q)


def test_training_windows_count_starts_and_allow_exactly_one():
    from probforecast.data.windows import TrainingWindows

    windows = _series_windows()
    assert len(TrainingWindows(windows, 30, None, 0)) == 30 - 4 - 8 + 1
    one = TrainingWindows(windows, 12, None, 0)  # train_end = P + Q: one start
    assert len(one) == 1 and one[0]["past_target"].shape == (8, 6)
    assert len(TrainingWindows(windows, 30, 3, 0)) == 19 * TrainingWindows.SUBSET_SEEDS


def test_training_window_subsets_are_seeded_by_the_index_not_the_global_rng():
    from probforecast.data.windows import TrainingWindows

    data = TrainingWindows(_series_windows(), 30, 3, seed=5)
    torch.manual_seed(0)
    a = data[7]["series_ids"]
    torch.manual_seed(1)
    assert torch.equal(data[7]["series_ids"], a)  # reproducible whatever the global RNG
    assert torch.equal(data[7 + 19 * 4]["series_ids"], data[8 + 19 * 4]["series_ids"])  # same seed
    subsets = {tuple(data[7 + 19 * k]["series_ids"].tolist()) for k in range(12)}
    assert len(subsets) > 3 and all(len(s) == 3 and list(s) == sorted(s) for s in subsets)
