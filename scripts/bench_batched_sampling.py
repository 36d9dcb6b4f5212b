"""Evaluation sampling with per-window seeds: one ``sample`` call per window vs one per batch.

Usage:
    python scripts/bench_batched_sampling.py                       # 2,000 windows, 100 samples
    python scripts/bench_batched_sampling.py --windows 2000 --num-samples 20 --out docs/benchmarks.md

``ForecastModule(sample_seed_scope="window")`` seeds every window by its start so that its
samples do not depend on the batch. A forecaster that draws its noise through ``SampleNoise``
(``per_window_noise = True``) is sampled once per batch with one generator per window
(**batched**); the **loop** is the same module with ``per_window_noise`` switched off on the
instance: one ``sample`` call per window on the re-seeded global RNG (what every model did
before). Both run in this process, alternating per repeat, on the same batches of
``--batch-size`` windows (random scaled data: the cost of sampling does not depend on the
values; untrained weights), and the script checks that the two give the same samples.

Models (N = 8 series, P = 96, Q = 24, 4 time features): GaussianRNN (hidden 40, 2 layers),
GPVar with the GLS likelihood (hidden 20, rank 10, lags [1, 24]; conditional sampler),
VolDy-VAE (its defaults) and CW-Flow (standard prior, d_model 32, 10 Euler steps).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models import CWFlow, GaussianRNN, GPVar, VolDyVAE
from probforecast.models.module import ForecastModule
from probforecast.utils.markdown_block import block_markers, replace_marked_block

N, P, Q, F = 8, 96, 24, 4
BLOCK = "bench_batched_sampling"
START, END = block_markers(BLOCK)


def build_models() -> dict[str, torch.nn.Module]:
    facts = dict(target_dim=N, context_length=P, prediction_length=Q, num_time_features=F)
    return {
        "GaussianRNN": GaussianRNN(**facts, hidden_size=40, num_layers=2),
        "GPVar + GLS": GPVar(**facts, hidden_size=20, rank=10, lags=[1, 24], likelihood="gls"),
        "VolDy-VAE": VolDyVAE(**facts),
        "CW-Flow": CWFlow(**facts, prior="standard", d_model=32, n_heads=2, sampling_steps=10),
    }


def make_batches(windows: int, batch_size: int) -> list[ForecastBatch]:
    gen = torch.Generator().manual_seed(0)
    batches = []
    for first in range(0, windows, batch_size):
        b = min(batch_size, windows - first)
        batches.append(
            ForecastBatch(
                torch.randn(b, P, N, generator=gen),
                torch.ones(b, P, N, dtype=torch.bool),
                torch.randn(b, P, F, generator=gen),
                torch.randn(b, Q, F, generator=gen),
                torch.randn(b, Q, N, generator=gen),
                torch.ones(b, Q, N, dtype=torch.bool),
                torch.arange(N).expand(b, N).clone(),
                torch.zeros(b, N),
                torch.ones(b, N),
                P + first + torch.arange(b),
            )
        )
    return batches


def evaluate(module: ForecastModule, batches: list[ForecastBatch], batched: bool) -> tuple:
    module.forecaster.per_window_noise = batched
    start = time.perf_counter()
    with torch.no_grad():
        samples = [module.draw_samples(b, module.num_samples) for b in batches]
    return time.perf_counter() - start, torch.cat(samples)


def measure(name: str, model, batches, num_samples: int, repeats: int) -> dict:
    module = ForecastModule(model.eval(), num_samples=num_samples, sample_seed_scope="window")
    evaluate(module, batches[:1], True)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    outs = {}
    for _ in range(repeats):
        for batched in (False, True):
            seconds, outs[batched] = evaluate(module, batches, batched)
            times[batched].append(seconds)
    windows = sum(b.batch_size for b in batches)
    loop, fast = statistics.median(times[False]), statistics.median(times[True])
    return {
        "model": name,
        "loop_wps": windows / loop,
        "batched_wps": windows / fast,
        "ratio": loop / fast,
        "max_abs_diff": (outs[True] - outs[False]).abs().max().item(),
    }


def table(rows: list[dict], args) -> str:
    load = os.getloadavg()
    head = [
        "```",
        f"python scripts/bench_batched_sampling.py --windows {args.windows} "
        f"--num-samples {args.num_samples} --batch-size {args.batch_size} "
        f"--repeats {args.repeats}",
        "```",
        "",
        f"{args.windows} windows, {args.num_samples} samples each, batches of "
        f"{args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end; median of "
        f"{args.repeats} alternating repeats.",
        "",
        "| model | per-window loop: windows/s | batched: windows/s | speed-up | "
        "max abs difference of the samples |",
        "|---|---:|---:|---:|---:|",
    ]
    lines = [
        f"| {r['model']} | {r['loop_wps']:.1f} | {r['batched_wps']:.1f} | "
        f"{r['ratio']:.2f}x | {r['max_abs_diff']:.1e} |"
        for r in rows
    ]
    return "\n".join(head + lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=None, help="names as in the table")
    parser.add_argument("--out", type=Path, default=None, help="markdown file with markers")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    models = build_models()
    unknown = set(args.models or []) - set(models)
    if unknown:
        raise SystemExit(f"unknown --models {sorted(unknown)}; choose from {sorted(models)}")
    batches = make_batches(args.windows, args.batch_size)
    rows = []
    for name, model in models.items():
        if args.models and name not in args.models:
            continue
        rows.append(measure(name, model, batches, args.num_samples, args.repeats))
        print(rows[-1], file=sys.stderr, flush=True)
    block = table(rows, args)
    print(block)
    if args.out is not None:
        replace_marked_block(args.out, BLOCK, block)


if __name__ == "__main__":
    main()
