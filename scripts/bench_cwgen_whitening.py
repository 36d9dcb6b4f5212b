"""Whitening cost: eigh (symmetric Sigma^{-1/2}) vs the Cholesky path (triangular solve), one run.

Both whiten a batch ``x [B, Q, N]`` given the JMCE's output (``Sigma = L L^T``): the eigh path
decomposes every ``N x N`` Sigma_t (O(N^3) each), the Cholesky path only solves with the given L.
Prints the median wall time per call and the ratio eigh / Cholesky (paper Table 19, Solar N=137:
"CW eigen" 14460 vs "CW trig" 52.7 for a whole training run).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_cwgen_whitening.py [--batch 8] [--horizon 192]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from probforecast.models.cwgen import CholeskyWhitening, SymmetricWhitening


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=192)
    parser.add_argument("--dims", type=int, nargs="+", default=[7, 21, 137])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"threads={torch.get_num_threads()} B={args.batch} Q={args.horizon} float32, median of {args.repeats}"
    )
    print(
        "| N | eigh whitening (ms) | Cholesky whitening (ms) | ratio eigh/Cholesky | max round-trip error |"
    )
    print("|---|---|---|---|---|")
    for n in args.dims:
        b, q = args.batch, args.horizon
        raw = torch.randn(b, q, n, n) / n**0.5
        lower = torch.tril(raw, -1) + torch.diag_embed(torch.rand(b, q, n) + 0.5)
        sigma = lower @ lower.transpose(-1, -2)
        mu, x = torch.randn(b, q, n), torch.randn(b, q, n)
        eigh_s = timed(
            lambda m=mu, s=sigma, v=x: SymmetricWhitening(m, s, eps=1e-3).whiten(v), args.repeats
        )
        chol_s = timed(lambda m=mu, f=lower, v=x: CholeskyWhitening(m, f).whiten(v), args.repeats)
        err = max(
            (w.unwhiten(w.whiten(x)) - x).abs().max().item()
            for w in (SymmetricWhitening(mu, sigma, eps=1e-3), CholeskyWhitening(mu, lower))
        )
        print(
            f"| {n} | {1e3 * eigh_s:.2f} | {1e3 * chol_s:.2f} | {eigh_s / chol_s:.1f} | {err:.1e} |"
        )


if __name__ == "__main__":
    main()
