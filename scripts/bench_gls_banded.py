"""AR(p) GLS: the block-banded path vs the dense ones, in one process, alternating.

Times, on random inputs of the paper's sizes, (1) the GLS log-likelihood forward + backward of a
training step's windows (``gls_log_prob``: ``banded`` vs the dense ``capacitance`` and
``covariance`` methods, each with the analytic backward) and (2) the rolling sampler's one-step
conditional (``gls_conditional_next``: the banded path vs the dense one on the same ``C_AR``).
Prints the best-of-``--repeats`` time of each, the ratios, and the largest difference of the
results (float rounding only).

    OMP_NUM_THREADS=1 python scripts/bench_gls_banded.py [--order 1] [--repeats 5]

Sizes: ``m4_hourly`` (D = Q = 48, B = 20 series per slice, R = 10, 16 slices per step; the
sampler conditions 2000 paths, 100 samples x 20 series groups) and ``exchange_rate_nips``
(D = 30, B = 8, R = 10).
"""

from __future__ import annotations

import argparse

import torch

from probforecast.distributions import (
    ar_correlation,
    gls_conditional_next,
    gls_log_prob,
    gls_options,
)
from probforecast.utils.timing import time_interleaved

SIZES = {"m4_hourly": (48, 20, 10, 16, 2000), "exchange_rate_nips": (30, 8, 10, 16, 800)}


def likelihood_runners(d, b, r, slices, order):
    torch.manual_seed(0)
    phi = (torch.randn(slices, order) * 0.5).requires_grad_()
    loc = torch.randn(slices, d, b, requires_grad=True)
    factor = (torch.randn(slices, d, b, r) * 0.3).requires_grad_()
    diag = (torch.rand(slices, d, b) + 0.1).requires_grad_()
    value = torch.randn(slices, d, b)

    def run(method: str) -> torch.Tensor:
        with gls_options(method=method):
            nll = -gls_log_prob(value, loc, factor, diag, ar_correlation(phi, d)).sum()
        nll.backward()
        return nll.detach()

    return {m: (lambda m=m: run(m)) for m in ("banded", "capacitance", "covariance")}


def conditional_runners(d, b, r, paths, order):
    torch.manual_seed(1)
    ar = ar_correlation(torch.randn(paths, order) * 0.5, d)
    dense = ar.dense()
    args = (
        torch.randn(paths, d - 1, b),
        torch.randn(paths, d - 1, b, r) * 0.3,
        torch.rand(paths, d - 1, b) + 0.1,
        torch.randn(paths, b, r) * 0.3,
        torch.rand(paths, b) + 0.1,
    )
    return {
        "banded": lambda: gls_conditional_next(*args, ar).loc,
        "dense": lambda: gls_conditional_next(*args, dense).loc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    print(f"AR({args.order}), one thread, best of {args.repeats}, alternating\n")
    print("| sizes | what | banded s | dense s (method) | dense / banded | max abs difference |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets:
        d, b, r, slices, paths = SIZES[name]
        runners = likelihood_runners(d, b, r, slices, args.order)
        times = time_interleaved(runners, args.repeats)
        results = {k: run() for k, run in runners.items()}
        for method in ("capacitance", "covariance"):
            gap = (results[method] - results["banded"]).abs().item()
            print(
                f"| {name} D={d} B={b} R={r}, {slices} windows | NLL forward + backward | "
                f"{times['banded']:.4f} | {times[method]:.4f} ({method}) | "
                f"{times[method] / times['banded']:.1f}x | {gap:.2e} |"
            )
        runners = conditional_runners(d, b, r, paths, args.order)
        times = time_interleaved(runners, max(1, args.repeats // 2))
        gap = (runners["dense"]() - runners["banded"]()).abs().max().item()
        print(
            f"| {name} D={d} B={b} R={r}, {paths} paths | one conditional step | "
            f"{times['banded']:.4f} | {times['dense']:.4f} (capacitance) | "
            f"{times['dense'] / times['banded']:.1f}x | {gap:.2e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
