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
