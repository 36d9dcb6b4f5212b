"""The ``probts`` split protocol (ProbTS' ``get_rolling_test``, VolDy-VAE's pipeline) and the
``missing_values`` option (weather.csv's -9999 sentinels)."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from probforecast.data import ForecastDataModule
from probforecast.data.errors import DataError
from probforecast.data.splits import probts_rolling_starts, probts_split


def _get_rolling_test_ends(begin: int, end: int, pred_len: int, rolling: int) -> list[int]:
    """ProbTS ``get_rolling_test``: the series is cut at ``rolling_end``; the window's horizon is
    its last ``pred_len`` steps, so the forecast starts at ``rolling_end - pred_len``."""
    n = math.ceil((end - begin - pred_len) / rolling)
    return [begin + pred_len + i * rolling - pred_len for i in range(n)]


@pytest.mark.parametrize(
    ("begin", "end", "q", "r"),
    [
        (11520, 14400, 96, 96),
        (11520, 14400, 720, 96),
        (0, 100, 10, 7),
        (0, 105, 5, 10),
        (3, 9, 6, 2),
    ],
)
def test_rolling_starts_follow_probts(begin, end, q, r):
    assert probts_rolling_starts(begin, end, q, r) == _get_rolling_test_ends(begin, end, q, r)


def test_etth1_windows_as_probts():
    split = probts_split((8640, 2880, 2880), 96, val_rolling_length=96, test_rolling_length=96)
    assert split.train_end == 8640
    # 29, not 30: the start 11520 + 2784 whose horizon ends exactly at the border is left out
    assert split.test_starts == tuple(range(11520, 11520 + 29 * 96, 96))
    assert split.val_starts == tuple(range(8640, 8640 + 29 * 96, 96))
    long = probts_split((8640, 2880, 2880), 720, val_rolling_length=96, test_rolling_length=96)
    assert len(long.val_starts) == len(long.test_starts) == 23  # fidelity note: 23 at H = 720


def test_datamodule_probts_protocol_on_ett_and_ratio_data(data_root, shared_cache_dir):
    cache_dir = shared_cache_dir  # read-only use of the converted datasets
    dm = ForecastDataModule(
        "etth1", root=str(data_root), context_length=96, protocol="probts", cache_dir=str(cache_dir)
    )
    dm.setup("fit")
    assert dm.protocol_name == "probts_ett"
    assert dm.split.test_starts == tuple(range(11520, 11520 + 29 * 96, 96))
    weather = ForecastDataModule(
        "weather",
        root=str(data_root),
        context_length=96,
        protocol="probts",
        cache_dir=str(cache_dir),
    )
    weather.setup("fit")
    length = weather.prepared.raw_values.shape[0]
    n_train, n_test = int(0.7 * length), int(0.2 * length)
    begin = length - n_test
    assert weather.split.train_end == n_train
    assert weather.split.test_starts == tuple(_get_rolling_test_ends(begin, length, 96, 96))
    assert weather.split.val_starts[0] == n_train


def test_probts_protocol_refuses_rolling_datasets_and_unread_options(data_root, shared_cache_dir):
    cache_dir = shared_cache_dir  # read-only use of the converted datasets
    gluonts = ForecastDataModule(
        "exchange_rate_nips", root=str(data_root), protocol="probts", cache_dir=str(cache_dir)
    )
    with pytest.raises(DataError, match="protocol 'probts' needs LTSF borders"):
        gluonts.setup("fit")
    thinned = ForecastDataModule(
        "etth1",
        root=str(data_root),
        protocol="probts",
        max_test_windows=10,
        cache_dir=str(cache_dir),
    )
    with pytest.raises(DataError, match="does not read data.max_test_windows"):
        thinned.setup("fit")
    ratios = ForecastDataModule(
        "etth1",
        root=str(data_root),
        protocol="probts",
        split_ratios=(0.6, 0.2, 0.2),
        cache_dir=str(cache_dir),
    )
    with pytest.raises(DataError, match="split_ratios"):
        ratios.setup("fit")


def test_missing_values_masks_weather_sentinels(data_root, shared_cache_dir):
    cache_dir = shared_cache_dir  # read-only use of the converted datasets
    with gzip.open(data_root / "weather" / "weather.csv.gz") as fh:
        frame = pd.read_csv(fh).drop(columns="date")
    sentinels = int((frame.to_numpy() == -9999).sum())
    assert sentinels > 0
    kept = ForecastDataModule("weather", root=str(data_root), cache_dir=str(cache_dir))
    masked = ForecastDataModule(
        "weather", root=str(data_root), missing_values=[-9999], cache_dir=str(cache_dir)
    )
    kept.setup("fit"), masked.setup("fit")
    raw_kept, raw_masked = kept.prepared.raw_values.numpy(), masked.prepared.raw_values.numpy()
    assert int(np.isnan(raw_masked).sum() - np.isnan(raw_kept).sum()) == sentinels
    ot = list(frame.columns).index("OT")
    train = frame["OT"].to_numpy()[: kept.split.train_end]
    np.testing.assert_allclose(float(kept.prepared.windows.scale[ot]), train.std(ddof=0), rtol=1e-6)
    clean = train[train != -9999]
    np.testing.assert_allclose(
        float(masked.prepared.windows.scale[ot]), clean.std(ddof=0), rtol=1e-6
    )


def test_missing_values_must_be_finite():
    with pytest.raises(DataError, match="missing_values must be finite"):
        ForecastDataModule("synthetic", missing_values=[float("nan")])


ILI_COLUMNS = ["% WEIGHTED ILI", "%UNWEIGHTED ILI", "AGE 0-4", "AGE 5-24", "ILITOTAL",
               "NUM. OF PROVIDERS", "OT"]  # fmt: skip


def _write_ili_like(root, rows: int = 966) -> pd.DataFrame:
    """A generated file with the layout of LTSF's illness/national_illness.csv (weekly, Tuesdays)."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2002-01-01", periods=rows, freq="W-TUE")
    frame = pd.DataFrame(rng.gamma(2.0, 1.0, (rows, 7)).cumsum(0), columns=ILI_COLUMNS)
    frame.insert(0, "date", dates.strftime("%Y-%m-%d %H:%M:%S"))
    (root / "illness").mkdir(parents=True)
    frame.to_csv(root / "illness" / "national_illness.csv", index=False)
    return frame


def test_illness_ltsf_entry_reads_the_ltsf_layout_with_the_ratio_split(tmp_path):
    frame = _write_ili_like(tmp_path / "data")
    dm = ForecastDataModule(
        "illness_ltsf",
        root=str(tmp_path / "data"),
        context_length=52,
        cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    assert dm.freq == "W-TUE" and dm.prediction_length == 36 and dm.target_dim == 7
    assert dm.series_names == ILI_COLUMNS
    np.testing.assert_allclose(dm.prepared.raw_values.numpy(), frame[ILI_COLUMNS].to_numpy())
    n_train, n_test = int(0.7 * 966), int(0.2 * 966)
    assert dm.split.train_end == n_train
    assert dm.split.test_starts[0] == 966 - n_test
    assert str(dm.prepared.start) == str(pd.Period("2002-01-01", freq="W-TUE"))


def test_illness_ltsf_missing_file_names_the_file_and_its_source(tmp_path):
    (tmp_path / "data").mkdir()
    dm = ForecastDataModule("illness_ltsf", root=str(tmp_path / "data"), cache_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"national_illness\.csv not found.*thuml/Autoformer"):
        dm.setup("fit")


def test_num_batches_per_epoch_null_is_one_pass_over_the_training_windows(tmp_path):
    _write_ili_like(tmp_path / "data")
    dm = ForecastDataModule(
        "illness_ltsf",
        root=str(tmp_path / "data"),
        context_length=36,
        prediction_length=24,
        batch_size=64,
        num_batches_per_epoch=None,
        cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    windows = int(0.7 * 966) - 24 - 36 + 1  # starts 36 .. train_end - 24
    assert dm.num_training_windows == windows
    assert len(dm.train_dataloader()) == math.ceil(windows / 64)
    with pytest.raises(DataError, match="num_batches_per_epoch must be >= 1 or null"):
        ForecastDataModule("synthetic", num_batches_per_epoch=0)
