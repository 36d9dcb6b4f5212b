"""M4 competition CSVs (``Hourly-train.csv`` / ``Hourly-test.csv``), as GluonTS' m4 recipe.

The files carry no timestamps (M4-info.csv with the start dates is not available offline). Like
GluonTS we use the start ``1750-01-01 00:00`` but we *right-align* the series: every series ends
at the same timestamp, so the 48-step M4 test horizon is one common window for the multivariate
view, and the shorter series are unobserved (NaN) at the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from probforecast.data.errors import DataError

M4_START = "1750-01-01 00:00"


def _read_ragged(path: Path) -> dict[str, np.ndarray]:
    frame = pd.read_csv(path, index_col=0)
    return {
        str(k): row[~np.isnan(row)]
        for k, row in zip(frame.index, frame.to_numpy(float), strict=True)
    }


def read_m4(
    train_path: Path, test_path: Path, freq: str, align: Literal["end", "start"] = "end"
) -> tuple[list[dict], list[dict]]:
    """Return (train entries, test entries); test entries are train + the M4 test horizon.

    ``align="end"`` (our default, see the module docstring) right-aligns the series;
    ``align="start"`` starts every series at ``1750-01-01 00:00`` as GluonTS' m4 recipe does,
    so shorter series end early (the layout the GLS paper's code evaluated: on m4_hourly its
    consecutive test windows at the end hold only the 245 series of full length); their test
    entries are padded with NaN (unobserved) to the common length.
    """
    if align not in ("end", "start"):
        raise DataError(f"M4 alignment must be 'end' or 'start'; got {align!r}")
    train = _read_ragged(train_path)
    test = _read_ragged(test_path)
    if set(train) != set(test):
        raise DataError(f"{train_path} and {test_path} hold different series ids")
    horizon = {len(v) for v in test.values()}
    if len(horizon) != 1:
        raise DataError(f"{test_path}: test horizons differ in length: {sorted(horizon)}")
    max_len = max(len(v) for v in train.values())
    base = pd.Period(M4_START, freq=freq)
    train_entries, test_entries = [], []
    for key, values in train.items():
        start = base + (max_len - len(values)) if align == "end" else base
        train_entries.append({"start": start, "target": values, "item_id": key})
        full = np.concatenate([values, test[key]])
        if align == "start":  # one test date for the grouper: shorter series end in NaN (missing)
            full = np.concatenate([full, np.full(max_len - len(values), np.nan)])
        test_entries.append({"start": start, "target": full, "item_id": key})
    return train_entries, test_entries
