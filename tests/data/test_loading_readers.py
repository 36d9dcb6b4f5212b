"""``load_dataset`` reads a registered dataset through the reader of its kind."""

from __future__ import annotations

import typing

import pytest

from probforecast.data import loading
from probforecast.data.registry import DATASETS, SourceKind


def test_every_source_kind_has_exactly_one_reader():
    assert set(loading.READERS) == set(typing.get_args(SourceKind))
    assert loading.FILE_KINDS <= set(loading.READERS)
    assert {info.kind for info in DATASETS.values()} <= set(loading.READERS)


def test_load_dataset_dispatches_on_the_registry_kind(monkeypatch, tmp_path):
    seen = []

    def reader(info, request):
        seen.append((info.name, request.prediction_length, request.cache, request.date_column))
        return "loaded"

    monkeypatch.setitem(loading.READERS, "ltsf_csv", reader)
    got = loading.load_dataset("etth1", prediction_length=7, cache_dir=tmp_path, date_column="d")
    assert got == "loaded" and seen == [("etth1", 7, tmp_path, "d")]
    monkeypatch.setitem(loading.READERS, "synthetic", reader)
    loading.load_dataset("synthetic", cache_dir=tmp_path)
    assert seen[-1][:2] == ("synthetic", DATASETS["synthetic"].prediction_length)


def test_unknown_name_lists_the_registered_ones(tmp_path):
    with pytest.raises(loading.DataError, match="unknown dataset 'nope'.*etth1"):
        loading.load_dataset("nope", cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("synthetic", {"synthetic": loading.SyntheticOptions(num_series=3, length=200)}),
        (
            "lmc",
            {"generator": loading.GeneratorOptions(num_samples=2, num_channels=3, length=96)},
        ),
    ],
)
def test_generated_sources_give_the_arrays_of_their_gluonts_view(name, options, tmp_path):
    """Generated sources hand the data module their arrays directly; the GluonTS objects are
    built only on demand, and grouping them gives the same arrays (the round trip it skips)."""
    import numpy as np

    loaded = loading.load_dataset(name, prediction_length=8, cache_dir=tmp_path, **options)
    assert loaded._datasets is None  # nothing built yet
    arrays = loaded.arrays
    values, start, train_length, test_lengths = loading.grouped_arrays(loaded.datasets)
    np.testing.assert_array_equal(arrays.values, values)
    assert (arrays.start, arrays.train_length, arrays.test_lengths) == (
        start,
        train_length,
        test_lengths,
    )
    assert arrays.names == [e["item_id"] for e in loaded.datasets.train]


def test_file_sources_group_their_gluonts_datasets(tmp_path):
    frame_path = tmp_path / "tiny.csv"
    frame_path.write_text(
        "date,a,b\n" + "".join(f"2021-01-01 {h:02d}:00,{h},{2 * h}\n" for h in range(24))
    )
    loaded = loading.load_dataset(str(frame_path), prediction_length=2, cache_dir=tmp_path)
    assert loaded.arrays.values.shape == (24, 2) and loaded.arrays.names == ["a", "b"]
    assert loaded.arrays.values[5].tolist() == [5.0, 10.0]
