"""Timing for benchmark scripts: alternating runs, best of several."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


def time_interleaved(runners: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` wall time of each runner after one warm-up call each, alternating
    them (A B C A B C ...) so that a change of load on a shared machine hits all alike."""
    for run in runners.values():
        run()  # warm-up
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
