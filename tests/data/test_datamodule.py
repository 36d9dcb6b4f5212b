"""ForecastDataModule: batches, masks, determinism, workers, series subsets, bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from probforecast.data import DataError, ForecastDataModule, SyntheticOptions, load_dataset
from probforecast.data.sources import gluonts_cache


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _hourly_frame(length=400, series=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(length, series)).cumsum(0), columns=[f"s{i}" for i in range(series)]
    )
    frame.insert(0, "date", pd.date_range("2021-01-01", periods=length, freq="h"))
    return frame


def _batches(dm, n=3):
    out = []
    for i, batch in enumerate(dm.train_dataloader()):
        out.append(batch)
        if i + 1 == n:
            break
    return out


def test_batch_shapes_and_contract():
    dm = ForecastDataModule("synthetic", context_length=48, prediction_length=24, batch_size=5)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.past_target.shape == (5, 48, 8)
    assert batch.future_target.shape == (5, 24, 8)
    assert batch.past_time_feat.shape == (5, 48, dm.num_time_features)
    assert batch.series_ids.shape == (5, 8) and batch.loc.shape == (5, 8)
    raw_future = dm.prepared.raw_values[batch.window_start[0] : batch.window_start[0] + 24].float()
    torch.testing.assert_close(
        batch.unscale(batch.future_target)[0], raw_future, rtol=1e-5, atol=1e-4
    )


def test_training_windows_are_deterministic_and_independent_of_workers():
    kw = dict(
        context_length=48, prediction_length=24, batch_size=4, num_batches_per_epoch=3, seed=3
    )
    a = _batches(ForecastDataModule("synthetic", **kw))
    b = _batches(ForecastDataModule("synthetic", **kw))
    c = _batches(ForecastDataModule("synthetic", num_workers=2, **kw))
    for x, y, z in zip(a, b, c, strict=True):
        assert torch.equal(x.window_start, y.window_start) and torch.equal(
            x.window_start, z.window_start
        )
        assert torch.equal(x.past_target, z.past_target)
    d = _batches(ForecastDataModule("synthetic", **{**kw, "seed": 4}))
    assert not torch.equal(a[0].window_start, d[0].window_start)


def test_num_series_per_batch_draws_subsets_sharing_a_window():
    dm = ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=12,
        batch_size=6,
        num_series_per_batch=3,
        synthetic=SyntheticOptions(num_series=10, length=600),
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.past_target.shape == (6, 24, 3)
    ids = batch.series_ids
    assert ids.max() < 10 and all(len(set(row.tolist())) == 3 for row in ids)
    assert len({tuple(row.tolist()) for row in ids}) > 1, "subsets differ across windows"
    start = int(batch.window_start[0])
    expected = dm.prepared.windows.scaled[start - 24 : start][:, ids[0]]
    torch.testing.assert_close(batch.past_target[0], expected)


def test_num_series_per_batch_larger_than_n_is_an_error():
    dm = ForecastDataModule(
        "synthetic", context_length=24, prediction_length=12, num_series_per_batch=99
    )
    with pytest.raises(DataError, match=r"num_series_per_batch=99 must lie in \[1, 8\]"):
        dm.setup("fit")


def test_nan_becomes_unobserved_and_never_reaches_a_batch(tmp_path):
    frame = _hourly_frame()
    frame.loc[10:60, "s1"] = np.nan
    frame.loc[300:305, "s0"] = np.inf
    path = _write_csv(tmp_path / "gaps.csv", frame)
    dm = ForecastDataModule(
        str(path),
        context_length=48,
        prediction_length=12,
        cache_dir=str(tmp_path / "c"),
        batch_size=64,
    )
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            for tensor in (batch.past_target, batch.future_target):
                assert torch.isfinite(tensor).all()
    windows = dm.prepared.windows
    assert not windows.observed[10:61, 1].any() and windows.observed[:10, 1].all()
    assert not windows.observed[300:306, 0].any()
    assert torch.isfinite(windows.loc).all() and torch.isfinite(windows.scale).all()


def test_constant_series_gets_unit_scale(tmp_path):
    frame = _hourly_frame()
    frame["s2"] = 5.0
    dm = ForecastDataModule(
        str(_write_csv(tmp_path / "c.csv", frame)),
        context_length=24,
        prediction_length=12,
        cache_dir=str(tmp_path / "c"),
    )
    dm.setup("fit")
    assert dm.prepared.windows.scale[2] == 1.0 and dm.prepared.windows.loc[2] == 5.0


def test_user_csv_uses_ratio_split_and_inferred_freq(tmp_path):
    dm = ForecastDataModule(
        str(_write_csv(tmp_path / "u.csv", _hourly_frame(1000))),
        context_length=24,
        prediction_length=12,
        cache_dir=str(tmp_path / "c"),
    )
    dm.setup("fit")
    assert dm.freq == "h" and dm.split.train_end == 700
    assert dm.split.test_starts[0] == 800


# ---------------------------------------------------------------- bad input
def test_unknown_dataset_name_lists_the_valid_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'nope'.*etth1"):
        load_dataset("nope")


def test_missing_file_names_the_file_and_its_source(tmp_path):
    with pytest.raises(
        DataError,
        match=r"ETTh1/ETTh1.csv.gz not found; official copy: github.com/zhouhaoyi/ETDataset",
    ):
        load_dataset("etth1", root=tmp_path)


def test_missing_root_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("PROBFORECAST_DATA", raising=False)
    with pytest.raises(DataError, match="--data.root DIR or set PROBFORECAST_DATA"):
        load_dataset("etth1")


def test_context_longer_than_series(tmp_path):
    dm = ForecastDataModule(
        str(_write_csv(tmp_path / "s.csv", _hourly_frame(100))),
        context_length=500,
        prediction_length=12,
        cache_dir=str(tmp_path / "c"),
    )
    with pytest.raises(DataError, match="does not fit in its training range of 70 steps"):
        dm.setup("fit")


def test_non_numeric_column(tmp_path):
    frame = _hourly_frame(50)
    frame["s1"] = frame["s1"].astype(object)
    frame.loc[7, "s1"] = "oops"
    with pytest.raises(DataError, match=r"column 's1' is not numeric \(e.g. value 'oops'\)"):
        load_dataset(
            str(_write_csv(tmp_path / "n.csv", frame)),
            prediction_length=4,
            cache_dir=tmp_path / "c",
        )


def test_missing_date_column_and_unsorted_dates(tmp_path):
    frame = _hourly_frame(50)
    with pytest.raises(DataError, match="has no date column 'date'"):
        load_dataset(
            str(_write_csv(tmp_path / "d.csv", frame.drop(columns="date"))),
            prediction_length=4,
            cache_dir=tmp_path / "c",
        )
    with pytest.raises(DataError, match="not sorted ascending"):
        load_dataset(
            str(_write_csv(tmp_path / "u.csv", frame.iloc[::-1])),
            prediction_length=4,
            cache_dir=tmp_path / "c",
        )


def test_truncated_cache_is_rebuilt_not_used(tmp_path):
    path = _write_csv(tmp_path / "x.csv", _hourly_frame(200))
    cache = tmp_path / "cache"
    first = load_dataset(str(path), prediction_length=4, cache_dir=cache)
    (directory,) = [d for d in cache.iterdir() if d.is_dir()]
    data = directory / "train" / "data.json"
    data.write_bytes(data.read_bytes()[:100])
    assert not gluonts_cache.is_valid_repository(directory)
    again = load_dataset(str(path), prediction_length=4, cache_dir=cache)
    assert gluonts_cache.is_valid_repository(directory)
    a = next(iter(first.datasets.train))["target"]
    b = next(iter(again.datasets.train))["target"]
    np.testing.assert_array_equal(a, b)


def test_gluonts_tar_matches_raw_json(data_root, cache_dir):
    import json
    import tarfile

    dm = ForecastDataModule(
        "exchange_rate_nips", root=str(data_root), context_length=30, cache_dir=str(cache_dir)
    )
    dm.setup("test")
    with tarfile.open(data_root / "exchange_rate_nips" / "exchange_rate_nips.tar.gz") as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("test/test.json"))
        rows = [json.loads(line) for line in archive.extractfile(member)]
    longest = [r for r in rows if len(r["target"]) == 6221]
    expected = np.array([r["target"] for r in longest]).T
    np.testing.assert_allclose(dm.prepared.raw_values.numpy(), expected)


def test_ltsf_csv_values_match_pandas(data_root, cache_dir):
    dm = ForecastDataModule(
        "etth1", root=str(data_root), context_length=96, cache_dir=str(cache_dir)
    )
    dm.setup("fit")
    with gzip.open(data_root / "ETTh1" / "ETTh1.csv.gz") as fh:
        frame = pd.read_csv(fh)
    np.testing.assert_allclose(
        dm.prepared.raw_values.numpy(), frame.drop(columns="date").to_numpy()
    )
    assert dm.series_names == list(frame.columns[1:])


def test_every_batch_carries_each_series_test_range_std(tmp_path):
    """``ForecastBatch.series_std`` (what normalised metrics divide by) is each series' raw-scale
    population std over the test range, observed entries only, on every loader and for series
    subsets; the module reads it from the batch, not from the data module."""
    frame = _hourly_frame(length=500, series=4, seed=1)
    frame.loc[430:440, "s2"] = np.nan  # inside the test range
    dm = ForecastDataModule(
        str(_write_csv(tmp_path / "std.csv", frame)),
        context_length=24,
        prediction_length=12,
        batch_size=5,
        num_series_per_batch=2,
        cache_dir=str(tmp_path / "c"),
    )
    dm.setup("fit")
    starts = dm.split.test_starts
    test_range = frame.iloc[starts[0] : starts[-1] + 12, 1:].to_numpy(dtype=float)
    expected = torch.tensor(np.nanstd(test_range, axis=0), dtype=torch.float32)
    torch.testing.assert_close(dm.series_test_std, expected)
    test_batch = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(test_batch.series_std, expected.expand(len(test_batch.loc), 4))
    train_batch = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(train_batch.series_std, expected[train_batch.series_ids])
    assert torch.equal(train_batch.to("cpu").series_std, train_batch.series_std)
    picked = test_batch.select_series(torch.tensor([3, 1])).select_windows(slice(1, 2))
    torch.testing.assert_close(picked.series_std, expected[[3, 1]].unsqueeze(0))
    torch.testing.assert_close(picked.spread(scaled=True), picked.series_std / picked.scale)
    assert picked.spread(scaled=False) is picked.series_std


def test_raw_targets_are_the_raw_values_with_nan_where_unobserved(tmp_path):
    frame = _hourly_frame(length=300, series=2, seed=2)
    dm = ForecastDataModule(
        str(_write_csv(tmp_path / "raw.csv", frame)),
        context_length=24,
        prediction_length=6,
        cache_dir=str(tmp_path / "c"),
    )
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    batch.past_observed[0, 3, 1] = False
    batch.future_observed[0, 2, 0] = False
    start = int(batch.window_start[0])
    values = torch.tensor(frame.iloc[:, 1:].to_numpy(), dtype=torch.float32)
    past, future = batch.raw_targets()
    torch.testing.assert_close(past[0], values[start - 24 : start], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(future[0], values[start : start + 6], rtol=1e-5, atol=1e-4)
    past_nan, future_nan = batch.raw_targets(unobserved_as_nan=True)
    assert torch.isnan(past_nan[0, 3, 1]) and torch.isnan(future_nan[0, 2, 0])
    assert int(torch.isnan(past_nan).sum()) == 1 and int(torch.isnan(future_nan).sum()) == 1
    torch.testing.assert_close(future_nan[0, 3], future[0, 3])
