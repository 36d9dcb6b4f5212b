"""Metric work on CPU runs on one torch thread (configurable).

A metric update is a sequence of medium-sized ops (copies, a sort, weighted sums over ~1 MB
blocks). With several intra-op threads every op ends on an OpenMP barrier, and when another
process holds a core (a browser, a data-loader worker, a second job) each barrier waits for a
time slice. Measured with ``scripts/bench_metrics.py --busy-neighbour`` (S=100, B=64, Q=24,
N=370, 2 cores, one CPU-bound neighbour): exact CRPS takes 5.5 s with 2 threads and 0.81 s
with one (properscoring 1.8 s); on the idle machine one thread costs 0.73 s against 0.57 s.
One thread is therefore the default; ``set_metric_cpu_threads(None)`` keeps torch's setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_metric_cpu_threads: int | None = 1


def set_metric_cpu_threads(threads: int | None) -> int | None:
    """Torch intra-op threads for metric work on CPU (``None``: leave torch's setting as it is).

    Returns the previous setting.
    """
    global _metric_cpu_threads
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"metric CPU threads must be a positive int or None; got {threads!r}")
    previous, _metric_cpu_threads = _metric_cpu_threads, threads
    return previous


@contextmanager
def metric_threads(device: torch.device | str) -> Iterator[None]:
    """Run the block with ``set_metric_cpu_threads``' thread count when ``device`` is a CPU.

    Nested blocks do not switch again (switching back re-wakes the OpenMP pool, ~1 ms).
    """
    want = _metric_cpu_threads
    have = torch.get_num_threads()
    if want is None or torch.device(device).type != "cpu" or have == want:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(have)
