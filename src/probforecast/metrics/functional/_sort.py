"""Sorting along the sample axis, and empirical quantiles of the samples.

Every order-based metric (exact CRPS, quantile CRPS, QICE, coverage, interval width, median)
reduces a sorted sample axis. ``torch.sort`` is fast on GPUs, but on CPUs it sorts each short
row with a generic comparison sort that also builds int64 indices: about 1.5 us per row of 100
samples, 7x slower than numpy's SIMD sort. CPU tensors are therefore sorted by one of:

- ``"numpy"`` (the default): blocks of columns are copied to a contiguous ``[b, m, S]`` array
  and sorted in place by ``np.sort`` along the last axis (x86-simd-sort / highway: SIMD
  sorting networks per row), on the calling thread only. No OpenMP barrier is involved, so a
  busy neighbour on a shared machine slows it down by its share of one core and no more.
- ``"network"``: a *bitonic sorting network* vectorised across columns: the samples of many
  columns are laid out as a ``[P, C]`` block (``P`` = S rounded up to a power of two, padded
  with +inf) and every compare-exchange stage is one ``torch.minimum`` / ``torch.maximum``
  over whole rows. Fast on an idle machine with several threads, but its
  ``log2(P)(log2(P)+1)/2`` small multi-threaded stages per block wait on OpenMP barriers, which
  costs 10-30x when another process holds a core (measured: ``scripts/bench_metrics.py
  --busy-neighbour``).
- ``"torch"``: ``torch.sort`` (what GPUs, autograd and dtypes numpy lacks always use).

Results are consumed block by block (``sorted_map``), so the sorted tensor is never
materialised at full size.

Axes: ``B`` windows, ``S`` samples, ``M`` flattened (horizon x series) columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ._threads import metric_threads

# Elements of one CPU block buffer per intra-op thread (~0.75 MB of float32): the two
# ping-pong buffers of a block then stay in the threads' L2 caches.
_BLOCK_ELEMENTS_PER_THREAD = 196_608
# The network does O(P log^2 P) work per column against O(S log S) for a comparison sort; on a
# 2-core AVX-512 CPU it still beats torch.sort up to S = 4096 and breaks even near S = 10^4.
_MAX_NETWORK_SAMPLES = 4096
# Samples per block on the numpy path (~1 MB of float32: stays in a core's L2 cache).
_NUMPY_BLOCK_ELEMENTS = 1 << 18
# Elements per block on the torch.sort path (bounds the temporaries of ``fn``).
_SORT_BLOCK_ELEMENTS = 1 << 24

BlockFn = Callable[..., tuple[Tensor, ...]]

CPU_SORT_METHODS: tuple[str, ...] = ("numpy", "network", "torch")
_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16)
_cpu_sort_method = "numpy"


def set_cpu_sort_method(method: str) -> str:
    """Choose how CPU tensors are sorted (see the module docstring); returns the previous one."""
    global _cpu_sort_method
    if method not in CPU_SORT_METHODS:
        raise ValueError(f"CPU sort method must be one of {CPU_SORT_METHODS}; got {method!r}")
    previous, _cpu_sort_method = _cpu_sort_method, method
    return previous


def _cpu_method(samples: Tensor) -> str:
    """The sort for ``samples [B, S, M]``: ``torch`` on GPUs and under autograd."""
    needs_grad = torch.is_grad_enabled() and samples.requires_grad
    if samples.device.type != "cpu" or needs_grad or samples.shape[1] <= 1:
        return "torch"
    if _cpu_sort_method == "numpy" and samples.dtype in _NUMPY_DTYPES:
        return "numpy"
    if _cpu_sort_method == "network" and samples.shape[1] <= _MAX_NETWORK_SAMPLES:
        return "network"
    return "torch"


def _compare_exchange(src: Tensor, dst: Tensor, j: int, k: int, size: int) -> None:
    """One bitonic stage on ``[P, C]`` buffers: rows ``i`` and ``i + j`` in blocks of ``2j``.

    Inside merges of width ``2k`` the direction alternates (ascending, descending, ...)
    except for the final merge (``2k == size``), which is ascending everywhere.
    """
    c = src.shape[-1]
    if 2 * k == size:
        sv = src.view(size // (2 * j), 2, j, c)
        dv = dst.view(size // (2 * j), 2, j, c)
        lo, hi = sv.select(1, 0), sv.select(1, 1)
        torch.minimum(lo, hi, out=dv.select(1, 0))
        torch.maximum(lo, hi, out=dv.select(1, 1))
        return
    sv = src.view(size // (4 * k), 2, k // j, 2, j, c)
    dv = dst.view(size // (4 * k), 2, k // j, 2, j, c)
    for direction, (first, second) in enumerate(
        ((torch.minimum, torch.maximum), (torch.maximum, torch.minimum))
    ):
        s, d = sv.select(1, direction), dv.select(1, direction)
        lo, hi = s.select(2, 0), s.select(2, 1)
        first(lo, hi, out=d.select(2, 0))
        second(lo, hi, out=d.select(2, 1))


def bitonic_sort_(x: Tensor, scratch: Tensor) -> Tensor:
    """Sort the rows of ``x [P, C]`` (``P`` a power of two) ascending along dim 0.

    Ping-pongs between ``x`` and ``scratch`` (both contiguous, same shape) and returns the
    buffer that holds the result; the other one holds garbage.
    """
    size = x.shape[0]
    if size & (size - 1):
        raise ValueError(f"bitonic_sort_ needs a power-of-two row count, got {size}")
    src, dst = x, scratch
    k = 1
    while k < size:
        j = k
        while j >= 1:
            _compare_exchange(src, dst, j, k, size)
            src, dst = dst, src
            j //= 2
        k *= 2
    return src


def _network_blocks(b: int, s: int, m: int) -> tuple[int, int, int]:
    """Block geometry ``(padded P, windows per block, columns per block)`` for the network."""
    padded = 1 << max(1, math.ceil(math.log2(s)))
    cols = max(256, _BLOCK_ELEMENTS_PER_THREAD * torch.get_num_threads() // padded)
    if m >= cols:
        n_parts = math.ceil(m / cols)
        return padded, 1, math.ceil(m / n_parts)
    return padded, max(1, min(b, cols // m)), m


def _numpy_blocks(b: int, s: int, m: int) -> tuple[int, int]:
    """``(windows per block, columns per block)`` of about ``_NUMPY_BLOCK_ELEMENTS`` samples:
    a block's copies and ``fn``'s temporaries then stay in cache (3x faster than 64 MB blocks
    for CRPS at S=100, B=64, Q=24, N=370)."""
    if s * m >= _NUMPY_BLOCK_ELEMENTS:
        n_parts = math.ceil(s * m / _NUMPY_BLOCK_ELEMENTS)
        return 1, math.ceil(m / n_parts)
    return max(1, min(b, _NUMPY_BLOCK_ELEMENTS // (s * m))), m


def _blockwise(
    samples: Tensor,
    fn: BlockFn,
    extras: Sequence[Tensor],
    geometry: tuple[int, int],
    sort_block: Callable[[Tensor], Tensor],
) -> tuple[Tensor, ...]:
    """Run ``fn`` on ``sort_block(samples[b0:b1, :, m0:m1])`` (``[S, b, m]``, sorted) over a
    ``(windows, columns)`` grid of blocks and assemble the ``[..., B, M]`` results."""
    b, _, m = samples.shape
    bc, mc = geometry
    outs: list[Tensor] | None = None
    for b0 in range(0, b, bc):
        b1 = min(b0 + bc, b)
        for m0 in range(0, m, mc):
            m1 = min(m0 + mc, m)
            block = sort_block(samples[b0:b1, :, m0:m1])
            res = fn(block, *(e[b0:b1, m0:m1] for e in extras))
            if outs is None:
                outs = [r.new_empty(*r.shape[:-2], b, m) for r in res]
            for out, r in zip(outs, res, strict=True):
                out[..., b0:b1, m0:m1] = r
    assert outs is not None
    return tuple(outs)


def _numpy_sort_block(part: Tensor) -> Tensor:
    rows = part.detach().transpose(1, 2).contiguous()  # [b, m, S], a copy
    rows.numpy().sort(axis=-1)  # in place, SIMD, this thread only
    return rows.permute(2, 0, 1).contiguous()  # [S, b, m]


def _numpy_map(samples: Tensor, fn: BlockFn, extras: Sequence[Tensor]) -> tuple[Tensor, ...]:
    geometry = _numpy_blocks(*samples.shape)
    return _blockwise(samples, fn, extras, geometry, _numpy_sort_block)


def _network_map(samples: Tensor, fn: BlockFn, extras: Sequence[Tensor]) -> tuple[Tensor, ...]:
    b, s, m = samples.shape
    padded, bc, mc = _network_blocks(b, s, m)
    storage = torch.empty(2, padded * bc * mc, dtype=samples.dtype, device=samples.device)

    def sort_block(part: Tensor) -> Tensor:
        cols = part.shape[0] * part.shape[2]
        buf = storage[0, : padded * cols].view(padded, cols)
        scratch = storage[1, : padded * cols].view(padded, cols)
        buf[:s].view(s, part.shape[0], part.shape[2]).copy_(part.transpose(0, 1))
        buf[s:].fill_(math.inf)
        return bitonic_sort_(buf, scratch)[:s].view(s, part.shape[0], part.shape[2])

    return _blockwise(samples, fn, extras, (bc, mc), sort_block)


def _torch_sort_map(samples: Tensor, fn: BlockFn, extras: Sequence[Tensor]) -> tuple[Tensor, ...]:
    b, s, m = samples.shape
    bc = max(1, _SORT_BLOCK_ELEMENTS // max(1, s * m))
    if torch.is_grad_enabled() and samples.requires_grad:
        bc = b  # one block keeps the autograd graph simple
    pieces: list[tuple[Tensor, ...]] = []
    for b0 in range(0, b, bc):
        block = torch.sort(samples[b0 : b0 + bc], dim=1).values.transpose(0, 1)
        pieces.append(fn(block, *(e[b0 : b0 + bc] for e in extras)))
    if len(pieces) == 1:
        return pieces[0]
    return tuple(torch.cat(parts, dim=-2) for parts in zip(*pieces, strict=True))


def sorted_map(samples: Tensor, fn: BlockFn, *extras: Tensor) -> tuple[Tensor, ...]:
    """Apply ``fn`` to the samples sorted along ``S``, block by block.

    Args:
        samples: ``[B, S, M]``.
        fn: called as ``fn(block, *extra_blocks)`` with ``block [S, b, m]`` sorted ascending along
            dim 0 and each extra sliced to ``[b, m]``; returns a tuple of ``[..., b, m]`` tensors.
        extras: ``[B, M]`` tensors sliced alongside the samples (e.g. the target).

    Returns:
        The tuple of ``[..., B, M]`` results, assembled from the blocks.
    """
    if samples.numel() == 0:  # nothing to sort; keeps the result shapes right
        return fn(samples.transpose(0, 1), *extras)
    method = _cpu_method(samples)
    with metric_threads(samples.device):
        if method == "numpy":
            return _numpy_map(samples, fn, extras)
        if method == "network":
            return _network_map(samples, fn, extras)
        return _torch_sort_map(samples, fn, extras)


QUANTILE_METHODS: tuple[str, ...] = ("linear", "rank")


def quantile_positions(
    levels: Sequence[float], n_samples: int, method: str = "linear"
) -> tuple[list[int], list[int], list[float]]:
    """Order-statistic indices and weights of a sample quantile.

    For level ``q`` the virtual index is ``h = (S - 1) q`` (0-based). ``method="linear"``
    (``np.quantile``'s default): ``lerp(x_(floor h), x_(floor h + 1), h - floor h)``, clipped at
    ``S - 1``. ``method="rank"`` (GluonTS' ``SampleForecast.quantile``): the order statistic
    ``x_(r)`` with ``r = np.round(h)`` (round half to even).
    """
    if method not in QUANTILE_METHODS:
        raise ValueError(f"quantile method must be one of {QUANTILE_METHODS}; got {method!r}")
    lo, hi, frac = [], [], []
    for q in levels:
        h = (n_samples - 1) * q
        if method == "rank":
            r = int(np.round(h))
            lo.append(r)
            hi.append(r)
            frac.append(0.0)
            continue
        f = math.floor(h)
        lo.append(min(f, n_samples - 1))
        hi.append(min(f + 1, n_samples - 1))
        frac.append(h - f)
    return lo, hi, frac


def quantiles_of_sorted(block: Tensor, levels: Sequence[float], method: str = "linear") -> Tensor:
    """Quantiles ``[L, ...]`` of ``block [S, ...]`` sorted along dim 0 (see ``quantile_positions``)."""
    lo, hi, frac = quantile_positions(levels, block.shape[0], method)
    device = block.device
    x_lo = block.index_select(0, torch.tensor(lo, device=device))
    x_hi = block.index_select(0, torch.tensor(hi, device=device))
    weight = torch.tensor(frac, dtype=block.dtype, device=device).view(
        -1, *([1] * (block.ndim - 1))
    )
    return torch.lerp(x_lo, x_hi, weight)


def sample_quantiles(samples: Tensor, levels: Sequence[float], method: str = "linear") -> Tensor:
    """Empirical quantiles of ``samples [B, S, Q, N]`` at ``levels``: ``[L, B, Q, N]``.

    ``method="linear"``: interpolation between order statistics, identical to ``np.quantile`` /
    ``torch.quantile`` with their default ``"linear"`` method; ``"rank"``: GluonTS' order
    statistic at ``round((S - 1) q)``.
    """
    b, s, q, n = samples.shape
    levels = tuple(levels)
    (out,) = sorted_map(
        samples.reshape(b, s, q * n), lambda blk: (quantiles_of_sorted(blk, levels, method),)
    )
    return out.view(len(levels), b, q, n)
