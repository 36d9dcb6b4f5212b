"""Time probforecast's metrics against properscoring, scoringrules and numpy in the same run.

Usage:
    PYTHONPATH=src python scripts/bench_metrics.py                   # comparison + every metric
    PYTHONPATH=src python scripts/bench_metrics.py --quick           # smaller, fewer repeats
    PYTHONPATH=src python scripts/bench_metrics.py --busy-neighbour  # with one CPU-bound process
    PYTHONPATH=src python scripts/bench_metrics.py --sort-methods numpy network torch --skip-all

Prints markdown tables:
1. CRPS, CRPS-sum, energy score and QICE at ``samples=100, B=64, Q=24, N=370`` (float32):
   our torchmetrics ``update`` against properscoring (numba) and scoringrules (numba backend);
   QICE against a numpy implementation of CARD's QICE (neither library has it). The ratio is
   ``reference time / our time`` (> 1: ours is faster); the values are checked to agree. One
   block per CPU sort method (``--sort-methods``), per torch thread count of the process (1 and
   the default) and per thread count inside metric updates (``--metric-threads 1 all``; the
   package default is 1, see ``metrics/functional/_threads.py``). ``--busy-neighbour`` starts
   one CPU-bound process (a numpy loop on one core) for the whole table, as a browser tab or
   another job would on a shared machine.
2. Ways to sort the sample axis on this CPU (why the package sorts with numpy on CPU).
3. Every metric of ``METRIC_REGISTRY``: update time, and the peak resident memory of its first
   update beyond the inputs (VmHWM after resetting it, Linux only), each in a fresh process.

Times are medians over repeats after one warm-up call (which also compiles the numba code).
Timings on a shared CPU are noisy: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import properscoring as ps
import scoringrules as sr
import torch

from probforecast.metrics import CRPS as CRPSMetric
from probforecast.metrics import (
    METRIC_REGISTRY,
    QICE,
    CRPSSum,
    EnergyScore,
    build_metric_collection,
)
from probforecast.metrics.functional import _sort, set_metric_cpu_threads


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (numba JIT, allocator, MKL)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def card_qice_numpy(samples: np.ndarray, target: np.ndarray, n_bins: int = 10) -> float:
    """CARD's QICE (Han et al. 2022) in numpy: samples [B, S, Q, N], target [B, Q, N]."""
    edges = np.percentile(samples, q=np.arange(n_bins + 1) * (100 / n_bins), axis=1)
    membership = (target[None] > edges).sum(axis=0)
    counts = np.array([(membership == v).sum() for v in range(n_bins + 2)])
    counts[1] += counts[0]
    counts[-2] += counts[-1]
    ratio = counts[1:-1] / target.size
    return float(np.abs(1.0 / n_bins - ratio).mean())


def _update_value(metric, samples, target) -> Callable[[], float]:
    def run() -> float:
        metric.reset()
        metric.update(samples, target)
        return metric.compute().item()

    return run


def busy_loop() -> None:
    """A CPU-bound neighbour: one core of element-wise numpy work, forever."""
    x = np.random.default_rng(0).standard_normal(1 << 16)
    while True:
        x = np.sin(x) + 1.0


def compare(
    b: int, s: int, q: int, n: int, repeats: int, sort_methods, thread_counts, metric_threads
) -> list[str]:
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(b, s, q, n, generator=gen)
    target = 0.3 + 1.2 * torch.randn(b, q, n, generator=gen)
    x, y = samples.numpy(), target.numpy()
    x_flat, y_flat = x.reshape(b, s, q * n), y.reshape(b, q * n)

    def ratio_crps(values: np.ndarray, truth: np.ndarray) -> float:
        return float(values.sum() / np.abs(truth).sum())

    def crps_of_sum(score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> float:
        y_sum = y.sum(-1)  # the sums are part of the timed work, as in our update
        return ratio_crps(score(y_sum, x.sum(-1)), y_sum)

    cases = [
        (
            "CRPS",
            _update_value(CRPSMetric(), samples, target),
            [
                ("properscoring", lambda: ratio_crps(ps.crps_ensemble(y, x, axis=1), y)),
                (
                    "scoringrules qd",
                    lambda: ratio_crps(sr.crps_ensemble(y, x, m_axis=1, backend="numba"), y),
                ),
                (
                    "scoringrules nrg",
                    lambda: ratio_crps(
                        sr.crps_ensemble(y, x, m_axis=1, estimator="nrg", backend="numba"), y
                    ),
                ),
            ],
        ),
        (
            "CRPS-sum",
            _update_value(CRPSSum(), samples, target),
            [
                (
                    "properscoring",
                    lambda: crps_of_sum(lambda ys, xs: ps.crps_ensemble(ys, xs, axis=1)),
                ),
                (
                    "scoringrules qd",
                    lambda: crps_of_sum(
                        lambda ys, xs: sr.crps_ensemble(ys, xs, m_axis=1, backend="numba")
                    ),
                ),
            ],
        ),
        (
            "energy score",
            _update_value(EnergyScore(), samples, target),
            [
                (
                    "scoringrules nrg",
                    lambda: float(sr.es_ensemble(y_flat, x_flat, backend="numba").mean()),
                )
            ],
        ),
        (
            "QICE",
            _update_value(QICE(), samples, target),
            [("numpy (CARD)", lambda: card_qice_numpy(x, y))],
        ),
    ]
    ref_times: dict[tuple[str, str, int], tuple[float, float]] = {}
    rows = [
        "| metric | torch threads | metric threads | CPU sort | ours (s) | reference "
        "| reference (s) | ratio ref/ours | max rel. diff |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    print("\n".join(rows), flush=True)
    default_threads = torch.get_num_threads()
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for method, mthreads in itertools.product(sort_methods, metric_threads):
            _sort.set_cpu_sort_method(method)
            set_metric_cpu_threads(None if mthreads == "all" else int(mthreads))
            for name, ours_fn, references in cases:
                ours_value = ours_fn()
                ours_time = median_time(ours_fn, repeats)
                for ref_name, ref_fn in references:
                    key = (name, ref_name, threads)
                    if key not in ref_times:  # numba and numpy run on one thread either way
                        reps = max(1, repeats // 2) if ref_name.endswith("nrg") else repeats
                        ref_times[key] = (ref_fn(), median_time(ref_fn, reps))
                    ref_value, ref_time = ref_times[key]
                    diff = abs(ours_value - ref_value) / max(abs(ref_value), 1e-12)
                    rows.append(
                        f"| {name} | {threads} | {mthreads} | {method} | {ours_time:.3f} | {ref_name} "
                        f"| {ref_time:.3f} | {ref_time / ours_time:.2f} | {diff:.1e} |"
                    )
                    print(rows[-1], flush=True)
    torch.set_num_threads(default_threads)
    _sort.set_cpu_sort_method("numpy")
    set_metric_cpu_threads(1)
    return rows


def _with_method(method: str, flat: torch.Tensor):
    previous = _sort.set_cpu_sort_method(method)
    try:
        return _sort.sorted_map(flat, lambda blk: (blk[0],))
    finally:
        _sort.set_cpu_sort_method(previous)


def numpy_blocks(flat: torch.Tensor):
    return _with_method("numpy", flat)


def network_blocks(flat: torch.Tensor):
    return _with_method("network", flat)


def sort_alternatives(b: int, s: int, q: int, n: int, repeats: int) -> list[str]:
    gen = torch.Generator().manual_seed(1)
    samples = torch.randn(b, s, q, n, generator=gen)
    last = samples.permute(0, 2, 3, 1).contiguous()
    flat = samples.reshape(b, s, q * n)
    numpy_last = last.numpy()
    half = s // 2
    options = [
        ("torch.sort(dim=1) (sample axis 2nd)", lambda: torch.sort(samples, dim=1)),
        ("torch.sort(dim=1, stable=False)", lambda: torch.sort(samples, dim=1, stable=False)),
        ("torch.sort(dim=0) of [S, ...] view", lambda: torch.sort(samples.transpose(0, 1), dim=0)),
        ("permute + contiguous (copy only)", lambda: samples.permute(0, 2, 3, 1).contiguous()),
        ("torch.sort(dim=-1) on contiguous [.., S]", lambda: torch.sort(last, dim=-1)),
        ("  same, stable=False", lambda: torch.sort(last, dim=-1, stable=False)),
        ("  same, float64", lambda: torch.sort(last.double(), dim=-1, stable=False)),
        ("torch.topk(k=S/2) on contiguous [.., S]", lambda: torch.topk(last, half, dim=-1)),
        ("torch.kthvalue (one order statistic)", lambda: torch.kthvalue(last, half, dim=-1)),
        (
            "bitonic network, blocks in cache",
            lambda: network_blocks(flat),
        ),
        ("np.sort on contiguous [.., S]", lambda: np.sort(numpy_last, axis=-1)),
        ("numpy blocks: copy + np.sort + copy back (ours)", lambda: numpy_blocks(flat)),
    ]
    rows = [f"| sorting the {s} samples of each of the B*Q*N columns | time (s) |", "|---|---:|"]
    print("\n".join(rows), flush=True)
    for name, fn in options:
        rows.append(f"| {name} | {median_time(fn, repeats):.3f} |")
        print(rows[-1], flush=True)
    return rows


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh)
    return int(status[field].split()[0])


def _peak_rss_child(name: str, shape: tuple[int, ...], repeats: int, queue) -> None:
    b, s, q, n, p = shape
    gen = torch.Generator().manual_seed(2)
    samples = torch.randn(b, s, q, n, generator=gen)
    target = torch.randn(b, q, n, generator=gen)
    kwargs = {
        "mask": torch.rand(b, q, n, generator=gen) < 0.95,
        "past_target": torch.randn(b, p, n, generator=gen),
        "series_scale": torch.rand(b, n, generator=gen) + 0.5,
    }
    collection = build_metric_collection(metrics=[name])
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak RSS (VmHWM) to the current RSS
        fh.write("5")
    before = _proc_status_kib("VmRSS")
    collection.update(samples, target, **kwargs)  # first call: memory, and warm-up for the timing
    peak = _proc_status_kib("VmHWM")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        collection.update(samples, target, **kwargs)
        times.append(time.perf_counter() - start)
    queue.put((statistics.median(times), (peak - before) / 1024))


def every_metric(shape: tuple[int, ...], repeats: int) -> list[str]:
    ctx = mp.get_context("spawn")
    rows = [
        "| metric (update, with a 95% mask) | time (s) | peak memory beyond inputs (MiB) |",
        "|---|---:|---:|",
    ]
    print("\n".join(rows), flush=True)
    for name in METRIC_REGISTRY:
        queue = ctx.Queue()
        slow = name in ("variogram_score", "prob_corr")
        proc = ctx.Process(
            target=_peak_rss_child, args=(name, shape, 1 if slow else repeats, queue)
        )
        proc.start()
        seconds, mib = queue.get()
        proc.join()
        rows.append(f"| {name} | {seconds:.3f} | {mib:.0f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="B=8 and 3 repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-all", action="store_true", help="skip the per-metric table")
    parser.add_argument("--skip-sorts", action="store_true", help="skip the sorting table")
    parser.add_argument(
        "--sort-methods",
        nargs="+",
        default=["numpy"],
        choices=_sort.CPU_SORT_METHODS,
        help="CPU sort methods to time in the comparison (default: the package default)",
    )
    parser.add_argument(
        "--metric-threads",
        nargs="+",
        default=["1"],
        help="torch threads inside metric updates: integers, or 'all' (torch's setting)",
    )
    parser.add_argument(
        "--busy-neighbour", action="store_true", help="run one CPU-bound process alongside"
    )
    args = parser.parse_args()
    b, s, q, n, p = (8, 100, 24, 370, 96) if args.quick else (64, 100, 24, 370, 96)
    repeats = 3 if args.quick else args.repeats
    threads = sorted({1, torch.get_num_threads()})

    print(f"samples={s}, B={b}, Q={q}, N={n} (float32); history P={p} for ProbCorr")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads, "
        f"{torch.backends.cpu.get_cpu_capability()}), numpy {np.__version__}, scoringrules "
        f"{sr.__version__}, properscoring {getattr(ps, '__version__', '0.1')}"
    )
    load = os.getloadavg()
    print(f"load average before: {load}")
    neighbour = None
    if args.busy_neighbour:
        neighbour = mp.get_context("spawn").Process(target=busy_loop, daemon=True)
        neighbour.start()
        print(f"busy neighbour: pid {neighbour.pid}, one CPU-bound numpy loop")
    elif load[0] > 1.0:
        print("WARNING: the machine is busy; 2-thread timings suffer most from contention")
    print()
    try:
        compare(b, s, q, n, repeats, args.sort_methods, threads, args.metric_threads)
        if not args.skip_sorts:
            print()
            sort_alternatives(b, s, q, n, repeats)
        if not args.skip_all:
            print()
            every_metric((b, s, q, n, p), max(1, repeats // 2))
    finally:
        if neighbour is not None:
            neighbour.terminate()
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
