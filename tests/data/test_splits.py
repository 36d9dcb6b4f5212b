"""Split protocols: window counts per dataset, no test target in the training range, scaler on train only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.data import DataError, ForecastDataModule, SyntheticOptions
from probforecast.data.splits import (
    border_split,
    consecutive_split,
    ett_borders,
    ratio_borders,
    rolling_split,
)
from tests.conftest import requires_real_data


def test_rolling_split_matches_gluonts_protocol():
    split = rolling_split(
        train_length=6071, test_lengths=[6101, 6131, 6161, 6191, 6221], prediction_length=30
    )
    assert split.test_starts == (6071, 6101, 6131, 6161, 6191)
    assert split.val_starts == (6041,)
    assert split.train_end == 6041


def test_ett_borders_and_cwgen_non_overlapping_count():
    borders = ett_borders(17420, steps_per_hour=1)
    assert borders == (8640, 2880, 2880)
    assert ett_borders(69680, steps_per_hour=4) == (34560, 11520, 11520)
    # CW-Gen: non-overlapping L+H segments, L=168, H=192 -> 8 test windows (spec-cwgen §10)
    split = border_split(borders, 192, val_stride=360, test_stride=360)
    assert len(split.test_starts) == 8
    # long-horizon protocol, stride 1: 2880 - 96 + 1 windows
    assert len(border_split(borders, 96, val_stride=1, test_stride=1).test_starts) == 2785


def test_ratio_borders_follow_ltsf_loaders():
    assert ratio_borders(52696) == (36887, 5270, 10539)
    with pytest.raises(ValueError, match="summing to 1"):
        ratio_borders(100, (0.5, 0.1, 0.1))


def test_max_windows_thins_evenly_keeping_ends():
    split = border_split((100, 50, 50), 5, val_stride=1, test_stride=1, max_val_windows=4)
    assert split.val_starts[0] == 100 and split.val_starts[-1] == 145 and len(split.val_starts) == 4


def test_synthetic_split_and_scaler_fitted_on_train_only():
    dm = ForecastDataModule("synthetic", context_length=48, prediction_length=24)
    dm.setup("fit")
    split = dm.split
    assert len(split.test_starts) == 4 and len(split.val_starts) == 1
    assert min(split.val_starts + split.test_starts) >= split.train_end
    raw = dm.prepared.raw_values.numpy()
    train = raw[: split.train_end]
    np.testing.assert_allclose(dm.prepared.windows.loc.numpy(), train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(dm.prepared.windows.scale.numpy(), train.std(0), rtol=1e-5)
    assert not np.allclose(raw.mean(0), train.mean(0), rtol=1e-6)


@requires_real_data
@pytest.mark.parametrize(
    ("name", "q", "stride", "n_test", "n_series"),
    [
        ("exchange_rate_nips", None, None, 5, 8),
        ("m4_hourly", None, None, 1, 414),
        ("etth1", 96, 96, 30, 7),
        ("ettm1", 96, 96, 120, 7),
        ("weather", 96, 96, 109, 21),
        ("exchange_ltsf", 96, 96, 15, 8),
    ],
)
def test_real_dataset_protocols(name, q, stride, n_test, n_series, data_root, cache_dir):
    dm = ForecastDataModule(
        name,
        root=str(data_root),
        context_length=96,
        prediction_length=q,
        test_stride=stride,
        cache_dir=str(cache_dir),
    )
    dm.setup("fit")
    split = dm.split
    assert dm.target_dim == n_series
    assert len(split.test_starts) == n_test
    q = dm.prediction_length
    # no test or validation target inside the training range
    assert min(split.test_starts) >= split.train_end
    assert min(split.val_starts) >= split.train_end
    # training windows end at or before train_end
    train_data = dm.train_dataloader().dataset
    last_start = train_data.first + train_data.num_starts - 1
    assert last_start + q == split.train_end
    # scaler fitted on the training range only
    raw = dm.prepared.raw_values[: split.train_end]
    obs = torch.isfinite(raw)
    mean = torch.where(obs, raw, 0).sum(0) / obs.sum(0)
    torch.testing.assert_close(dm.prepared.windows.loc.double(), mean, rtol=1e-5, atol=1e-6)


@requires_real_data
def test_m4_is_right_aligned_with_common_test_window(data_root, cache_dir):
    dm = ForecastDataModule(
        "m4_hourly", root=str(data_root), context_length=96, cache_dir=str(cache_dir)
    )
    dm.setup("test")
    raw = dm.prepared.raw_values
    assert raw.shape == (1008, 414)
    assert torch.isfinite(raw[-48:]).all(), "every series is observed over the M4 test horizon"
    assert dm.split.test_starts == (960,)
    assert (~torch.isfinite(raw[:100])).any(), "shorter series are unobserved at the start"


def test_consecutive_split_is_the_gls_papers_exchange_rate_protocol():
    """Official code (train_batch.py): validation cut-off 6100 - 30 - 5 + 1 = 6066, training
    cut-off 6066 - 34 = 6032, on the first test entry (6101 steps)."""
    split = consecutive_split(6101, 30, 5)
    assert split.test_starts == (6067, 6068, 6069, 6070, 6071)
    assert split.val_starts == (6033, 6034, 6035, 6036, 6037)
    assert split.train_end == 6033


@pytest.mark.parametrize(("length", "q", "r"), [(1008, 48, 7), (100, 5, 1), (60, 4, 3)])
def test_consecutive_split_layout(length, q, r):
    split = consecutive_split(length, q, r)
    assert split.test_starts[-1] + q == length  # the last test horizon ends the series
    assert split.test_starts == tuple(range(split.test_starts[0], split.test_starts[0] + r))
    assert split.val_starts == tuple(range(split.train_end, split.train_end + r))
    assert split.val_starts[-1] + q == split.test_starts[0]  # validation ends before the test
    assert split.test_starts[0] - split.train_end == q + r - 1  # validation covers Q + r - 1


def test_consecutive_split_too_short_and_bad_count():
    with pytest.raises(DataError, match="needs 2 x"):
        consecutive_split(20, 10, 3)
    with pytest.raises(DataError, match="num_test_windows must be >= 1"):
        consecutive_split(100, 10, 0)


@requires_real_data
def test_gls_paper_protocol_on_the_real_datasets(data_root, cache_dir):
    dm = ForecastDataModule(
        "exchange_rate_nips", root=str(data_root), cache_dir=str(cache_dir),
        context_length=44, protocol="gls_paper",
    )  # fmt: skip
    dm.setup("fit")
    assert dm.split.test_starts == (6067, 6068, 6069, 6070, 6071)
    assert dm.split.val_starts == (6033, 6034, 6035, 6036, 6037)
    assert dm.split.train_end == 6033 and dm.describe()["protocol"] == "gls_paper"
    batch = next(iter(dm.test_dataloader()))
    assert batch.window_start.tolist() == [6067, 6068, 6069, 6070, 6071]
    # m4_hourly: 7 windows; series start together (GluonTS' recipe), so only the 245 series of
    # full length (960 + 48 steps) reach the test windows, as in the official code
    m4 = ForecastDataModule(
        "m4_hourly", root=str(data_root), cache_dir=str(cache_dir), context_length=216,
        protocol="gls_paper", eval_batch_size=7,
    )  # fmt: skip
    m4.setup("fit")
    assert m4.split.test_starts == tuple(range(954, 961))
    assert m4.split.val_starts == tuple(range(900, 907)) and m4.split.train_end == 900
    batch = next(iter(m4.test_dataloader()))
    assert batch.future_observed.all(1).sum(-1).tolist() == [245] * 7
    assert not batch.future_observed.any(1).logical_xor(batch.future_observed.all(1)).any()


def _synthetic(**kwargs):
    return ForecastDataModule(
        "synthetic", context_length=24, prediction_length=6,
        synthetic=SyntheticOptions(num_series=2, length=300, num_test_windows=2), **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "option", "value"),
    [
        ("default", "max_val_windows", 4),
        ("default", "max_test_windows", 4),
        ("default", "val_stride", 2),
        ("default", "test_stride", 2),
        ("default", "split_ratios", (0.6, 0.2, 0.2)),
        ("default", "num_test_windows", 3),
        ("gls_paper", "num_val_windows", 2),
        ("gls_paper", "max_val_windows", 2),
        ("gls_paper", "test_stride", 2),
    ],
)
def test_an_option_the_protocol_does_not_read_is_an_error(protocol, option, value):
    kwargs = {"num_test_windows": 3} if protocol == "gls_paper" else {}
    dm = _synthetic(protocol=protocol, **{**kwargs, option: value})
    name = "gls_paper" if protocol == "gls_paper" else "rolling"
    with pytest.raises(
        DataError, match=f"'{name}' split protocol, which does not read data.{option}"
    ):
        dm.setup("fit")


def test_border_protocols_refuse_the_rolling_options(tmp_path):
    import pandas as pd

    path = tmp_path / "x.csv"
    frame = pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=400, freq="h"), "a": np.arange(400.0)}
    )
    frame.to_csv(path, index=False)
    for option in ("num_val_windows", "num_test_windows"):
        dm = ForecastDataModule(str(path), context_length=24, prediction_length=6, **{option: 2})
        with pytest.raises(
            DataError, match=f"'ratio' split protocol, which does not read data.{option}"
        ):
            dm.setup("fit")
    dm = ForecastDataModule(str(path), context_length=24, prediction_length=6, max_val_windows=2,
                            split_ratios=(0.6, 0.2, 0.2))  # fmt: skip
    dm.setup("fit")
    assert len(dm.split.val_starts) == 2 and dm.split.train_end == 240


def test_gls_paper_needs_a_window_count_where_the_registry_has_none():
    with pytest.raises(DataError, match="set data.num_test_windows"):
        _synthetic(protocol="gls_paper").setup("fit")
    dm = _synthetic(protocol="gls_paper", num_test_windows=3)
    dm.setup("fit")
    assert len(dm.split.test_starts) == len(dm.split.val_starts) == 3
    with pytest.raises(DataError, match="protocol must be one of"):
        _synthetic(protocol="gls")
    with pytest.raises(DataError, match="protocol 'probts' needs LTSF borders"):
        _synthetic(protocol="probts").setup("fit")
