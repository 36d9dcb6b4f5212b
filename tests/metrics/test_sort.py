"""The CPU sorting network and the sample quantiles against torch.sort / numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.metrics.functional import _sort, sample_quantiles


@pytest.mark.parametrize("size", [2, 4, 8, 64, 128])
def test_bitonic_network_sorts_every_column(size):
    gen = torch.Generator().manual_seed(size)
    x = torch.randn(size, 37, generator=gen)
    x[:, 0] = 1.0  # ties
    expected = torch.sort(x, dim=0).values
    result = _sort.bitonic_sort_(x.clone(), torch.empty_like(x))
    assert torch.equal(result, expected)


@pytest.fixture
def cpu_sort():
    """Select a CPU sort method for one test, restoring the default afterwards."""
    previous = _sort.set_cpu_sort_method("numpy")
    yield _sort.set_cpu_sort_method
    _sort.set_cpu_sort_method(previous)


@pytest.mark.parametrize("method", _sort.CPU_SORT_METHODS)
@pytest.mark.parametrize("s", [2, 3, 5, 31, 100, 129, 300])
@pytest.mark.parametrize("shape", [(3, 2), (1, 700), (5, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sorted_map_matches_torch_sort(s, shape, dtype, method, cpu_sort, monkeypatch):
    b, m = shape
    gen = torch.Generator().manual_seed(s)
    x = torch.randn(b, s, m, generator=gen, dtype=dtype)
    x[:, : s // 2, 0] = 0.5  # ties
    y = torch.randn(b, m, generator=gen, dtype=dtype)
    # small blocks: several per call, and a partial last one
    monkeypatch.setattr(_sort, "_BLOCK_ELEMENTS_PER_THREAD", 2048)
    monkeypatch.setattr(_sort, "_SORT_BLOCK_ELEMENTS", 2 * s * m)
    monkeypatch.setattr(_sort, "_NUMPY_BLOCK_ELEMENTS", 3 * s)  # split windows and columns
    cpu_sort(method)
    assert _sort._cpu_method(x) == method
    before = x.clone()

    def fn(block, y_block):
        return block.clone(), block[0] + y_block

    sorted_x, first_plus_y = _sort.sorted_map(x, fn, y)
    expected = torch.sort(x, dim=1).values.transpose(0, 1)
    assert torch.equal(sorted_x, expected)
    assert torch.equal(first_plus_y, expected[0] + y)
    assert torch.equal(x, before)  # the input is never sorted in place


def test_the_method_falls_back_where_it_cannot_run(cpu_sort):
    assert _sort._cpu_method(torch.zeros(2, 5, 3)) == "numpy"  # the default
    assert _sort._cpu_method(torch.zeros(2, 5, 3, dtype=torch.bfloat16)) == "torch"
    assert _sort._cpu_method(torch.zeros(2, 1, 3)) == "torch"
    cpu_sort("network")
    assert _sort._cpu_method(torch.zeros(2, 5000, 3)) == "torch"
    with pytest.raises(ValueError, match="one of"):
        cpu_sort("quicksort")


@pytest.mark.parametrize("method", _sort.CPU_SORT_METHODS)
def test_autograd_path_uses_torch_sort_and_backpropagates(method, cpu_sort):
    cpu_sort(method)
    x = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    assert _sort._cpu_method(x) == "torch"
    (smallest,) = _sort.sorted_map(x, lambda block: (block[0],))
    smallest.sum().backward()
    assert torch.equal(x.grad.sum(1), torch.ones(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("s", [1, 2, 7, 100, 600])
def test_sample_quantiles_match_numpy_linear(s):
    gen = torch.Generator().manual_seed(s)
    x = torch.randn(3, s, 4, 5, generator=gen, dtype=torch.float64)
    levels = (0.0, 0.025, 0.1, 0.5, 0.7, 0.975, 1.0)
    ours = sample_quantiles(x, levels)
    ref = np.quantile(x.numpy(), levels, axis=1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, torch.quantile(x, torch.tensor(levels, dtype=x.dtype), dim=1))


@pytest.mark.parametrize("method", ["network", "torch"])
def test_every_sort_method_gives_the_same_metrics(method, cpu_sort, monkeypatch):
    """Accelerators use torch.sort; each CPU method must give the default's metrics."""
    from probforecast.metrics import functional as F

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, 4, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)

    def metrics():
        return (
            F.crps(x, y),
            F.crps_quantile(x, y),
            F.qice(x, y),
            F.sample_quantiles(x, (0.1, 0.5)),
        )

    default = metrics()
    cpu_sort(method)
    monkeypatch.setattr(_sort, "_SORT_BLOCK_ELEMENTS", 40 * 20)  # one window per block
    for a, b in zip(default, metrics(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
