"""Train / validation / test protocols expressed as window start indices.

A window with forecast start ``s`` has context ``[s - P, s)`` and horizon ``[s, s + Q)`` in the
dataset tensor. Training windows and the scaler only see ``[0, train_end)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from probforecast.data.errors import DataError

ETT_MONTH_HOURS = 30 * 24


@dataclass(frozen=True)
class Split:
    """Where each split's windows start.

    Attributes:
        train_end: exclusive end of the training range (training windows end at or before it).
        val_starts: forecast start indices of the validation windows.
        test_starts: forecast start indices of the test windows.
    """

    train_end: int
    val_starts: tuple[int, ...]
    test_starts: tuple[int, ...]

    def check(self, context_length: int, prediction_length: int, name: str) -> None:
        """Raise one clear ``DataError`` if the windows do not fit the series."""
        need = context_length + prediction_length
        if self.train_end < need:
            raise DataError(
                f"dataset {name!r}: context_length + prediction_length = {need} does not fit in its "
                f"training range of {self.train_end} steps; use a shorter context_length"
            )
        first = min(self.val_starts + self.test_starts, default=context_length)
        if first < context_length:
            raise DataError(
                f"dataset {name!r}: the first evaluation window starts at step {first}, before the "
                f"context_length of {context_length} steps is available; use a shorter context_length"
            )
        if not self.test_starts:
            raise DataError(f"dataset {name!r}: the protocol leaves no test window")


def _thin(starts: list[int], max_windows: int | None) -> tuple[int, ...]:
    """Keep at most ``max_windows`` evenly spaced windows (always the first and the last)."""
    if max_windows is None or len(starts) <= max_windows:
        return tuple(starts)
    if max_windows == 1:
        return (starts[-1],)
    step = (len(starts) - 1) / (max_windows - 1)
    return tuple(starts[round(i * step)] for i in range(max_windows))


def rolling_split(
    train_length: int,
    test_lengths: list[int],
    prediction_length: int,
    num_val_windows: int = 1,
) -> Split:
    """GluonTS protocol: each test entry's last ``Q`` steps is one rolling test window; the last
    ``num_val_windows`` non-overlapping ``Q``-windows of the training part are validation, and
    training windows end before the first of them."""
    test_starts = sorted({length - prediction_length for length in test_lengths})
    val_starts = [train_length - prediction_length * k for k in range(num_val_windows, 0, -1)]
    train_end = val_starts[0] if val_starts else train_length
    return Split(train_end, tuple(val_starts), tuple(test_starts))


def border_split(
    borders: tuple[int, int, int],
    prediction_length: int,
    *,
    val_stride: int,
    test_stride: int,
    max_val_windows: int | None = None,
    max_test_windows: int | None = None,
) -> Split:
    """LTSF protocol: consecutive train/val/test ranges of lengths ``borders``; evaluation windows
    roll through val and test with the given strides (their context may reach into the previous
    range, as in the LTSF loaders)."""
    n_train, n_val, n_test = borders
    val = list(range(n_train, n_train + n_val - prediction_length + 1, val_stride))
    test_begin, test_end = n_train + n_val, n_train + n_val + n_test
    test = list(range(test_begin, test_end - prediction_length + 1, test_stride))
    return Split(n_train, _thin(val, max_val_windows), _thin(test, max_test_windows))


def probts_rolling_starts(
    begin: int, end: int, prediction_length: int, rolling_length: int
) -> list[int]:
    """ProbTS' rolling evaluation windows over the range ``[begin, end)``: forecast starts
    ``begin + i * rolling_length`` for ``i < ceil((end - begin - Q) / rolling_length)``.

    This is ``get_rolling_test`` of ProbTS (and of the K2VAE fork that produced VolDy-VAE's
    numbers): a start lies strictly before ``end - Q``, so when ``end - begin - Q`` is a multiple
    of ``rolling_length`` the last horizon that would end exactly at ``end`` is left out (ETTh1
    test, ``Q = 96``: 29 windows, not 30).
    """
    if rolling_length < 1:
        raise DataError(f"the rolling length must be >= 1; got {rolling_length}")
    count = max(0, math.ceil((end - begin - prediction_length) / rolling_length))
    return [begin + i * rolling_length for i in range(count)]


def probts_split(
    borders: tuple[int, int, int],
    prediction_length: int,
    *,
    val_rolling_length: int,
    test_rolling_length: int,
) -> Split:
    """ProbTS' long-horizon protocol on LTSF borders (``ett_borders`` / ``ratio_borders``):
    training up to the validation range; validation and test windows from
    ``probts_rolling_starts`` over their ranges, every window kept (no thinning); contexts reach
    back into the previous range. VolDy-VAE's code uses ``test_rolling_length = 96`` for both."""
    n_train, n_val, n_test = borders
    val = probts_rolling_starts(n_train, n_train + n_val, prediction_length, val_rolling_length)
    begin = n_train + n_val
    test = probts_rolling_starts(begin, begin + n_test, prediction_length, test_rolling_length)
    return Split(n_train, tuple(val), tuple(test))


def ett_borders(length: int, steps_per_hour: int) -> tuple[int, int, int]:
    """12/4/4 months (8640/2880/2880 hourly steps, x4 for 15-minute data)."""
    month = ETT_MONTH_HOURS * steps_per_hour
    borders = (12 * month, 4 * month, 4 * month)
    if sum(borders) > length:
        raise DataError(f"ETT protocol needs {sum(borders)} steps; the file has {length}")
    return borders


def ratio_borders(length: int, ratios: tuple[float, ...] = (0.7, 0.1, 0.2)) -> tuple[int, int, int]:
    """Chronological split by ratios, as the LTSF loaders: train = int(0.7 T), test = int(0.2 T),
    validation = the rest."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise DataError(
            f"split ratios must be three non-negative numbers summing to 1; got {ratios}"
        )
    n_train, n_test = int(length * ratios[0]), int(length * ratios[2])
    return n_train, length - n_train - n_test, n_test


def consecutive_split(length: int, prediction_length: int, num_windows: int) -> Split:
    """The GLS paper's protocol (Zheng & Sun 2024, App. A.1; its code's cut-offs): the last
    ``r = num_windows`` forecast starts of the series are consecutive (stride 1) test windows,
    the ``r`` consecutive windows before them are validation, and training ends before the first
    validation horizon.

    With ``max_idx = length - 1``, ``Q = prediction_length``: the validation cut-off is
    ``v = max_idx - Q - r + 1`` (last step a validation horizon may reach) and the training
    cut-off ``c = v - (max_idx - v)`` (last training step). Test starts ``v + 1 .. v + r``,
    validation starts ``c + 1 .. c + r``, ``train_end = c + 1``; validation and test each cover
    ``Q + r - 1`` steps. exchange_rate_nips (first test entry, ``length = 6101``, ``Q = 30``,
    ``r = 5``): test 6067..6071, validation 6033..6037, training steps 0..6032.
    """
    if num_windows < 1:
        raise DataError(f"num_test_windows must be >= 1; got {num_windows}")
    last_val = length - 1 - prediction_length - num_windows + 1
    last_train = last_val - (length - 1 - last_val)
    test = tuple(range(last_val + 1, last_val + 1 + num_windows))
    val = tuple(range(last_train + 1, last_train + 1 + num_windows))
    if last_train < 0:
        raise DataError(
            f"the consecutive protocol needs 2 x (prediction_length + num_test_windows - 1) = "
            f"{2 * (prediction_length + num_windows - 1)} steps for validation and test; the "
            f"series has {length}"
        )
    return Split(last_train + 1, val, test)
