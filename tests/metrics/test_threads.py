"""Metric work on CPU runs on the configured number of torch threads, restored afterwards."""

from __future__ import annotations

import pytest
import torch

from probforecast.metrics import CRPS, ForecastMetric, build_metric_collection
from probforecast.metrics.functional import _sort, metric_threads, set_metric_cpu_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
    set_metric_cpu_threads(1)


class ThreadsSeen(ForecastMetric):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self._add_sum_state("total")

    def update(self, samples, target, mask=None) -> None:
        self.seen.append(torch.get_num_threads())
        self.total += samples.sum()

    def compute(self):
        return self.total


def test_metric_updates_run_on_one_thread_and_restore_the_setting(two_threads, monkeypatch):
    metric = ThreadsSeen()
    metric.update(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5))
    assert metric.seen == [1] and torch.get_num_threads() == 2

    seen = []
    numpy_map = _sort._numpy_map
    monkeypatch.setattr(
        _sort, "_numpy_map", lambda *a: seen.append(torch.get_num_threads()) or numpy_map(*a)
    )
    CRPS().update(torch.randn(2, 5, 3, 4), torch.randn(2, 3, 4))
    _sort.sorted_map(torch.randn(2, 5, 3), lambda block: (block[0],))  # the functional route
    assert seen == [1, 1] and torch.get_num_threads() == 2

    set_metric_cpu_threads(None)  # torch's own setting
    metric.update(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5))
    assert metric.seen == [1, 2]


def test_an_error_restores_the_thread_count(two_threads):
    with pytest.raises(RuntimeError, match="boom"), metric_threads("cpu"):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_accelerator_tensors_and_bad_settings(two_threads):
    with metric_threads(torch.device("cuda")):  # never switches for accelerator tensors
        assert torch.get_num_threads() == 2
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="positive int or None"):
            set_metric_cpu_threads(bad)


def test_collections_keep_the_wrapped_update_signature():
    collection = build_metric_collection(metrics=["crps", "qice"])
    collection.update(torch.randn(2, 5, 3, 4), torch.randn(2, 3, 4), mask=None)
    assert set(collection.compute()) == {"crps", "qice"}
