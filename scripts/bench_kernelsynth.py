"""Benchmark: DynLMC-drift generation with the fast exact GP sampler vs the dense eigh sampler.

Generates ``--samples`` DynLMC ``drift`` samples of ``--channels x --length`` (seeds as the
corpus: ``SeedSequence(0, spawn_key=(i,))``) with ``GPSampler`` and times it, then re-draws the
first ``--dense-latents`` of the *same* latent kernels (same grids) with the naive sampler
(dense covariance + ``numpy.linalg.eigh``, as Chronos / TimePFN) and times that. Both are
extrapolated to the paper's 1500-sample corpus per latent. Also: peak traced memory of each
sampler (``tracemalloc``) and a KS check of fast vs dense draws on a few of those kernels.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_kernelsynth.py --samples 40 --dense-latents 80
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_kernelsynth.py --corpus-samples 100 --samples 2 \
        --dense-latents 4   # also writes a 100-sample corpus with 2 worker processes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc

import numpy as np
from scipy import stats

from probforecast.data.synthetic import (
    CorpusSpec,
    GPSampler,
    SyntheticCorpus,
    dense_gp_sample,
    generate_dynlmc,
)
from probforecast.data.synthetic.kernels import key


class TimedSampler(GPSampler):
    """``GPSampler`` that accumulates the time spent drawing latents."""

    seconds = 0.0

    def sample(self, expr, x, num, rng):
        t0 = time.perf_counter()
        out = super().sample(expr, x, num, rng)
        self.seconds += time.perf_counter() - t0
        return out


def corpus_run(args) -> None:
    """Time ``SyntheticCorpus.generate`` (chunked, ``--workers`` processes) into a temp dir."""
    spec = CorpusSpec(
        "dynlmc_drift", args.corpus_samples, args.channels, args.length, seed=0, chunk_size=25
    )
    with tempfile.TemporaryDirectory() as tmp:
        corpus = SyntheticCorpus(spec, tmp)
        t0 = time.perf_counter()
        corpus.generate(workers=args.workers)
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in corpus.directory.iterdir())
    per = seconds / args.corpus_samples
    print(f"# corpus: {args.corpus_samples} dynlmc_drift samples written, {args.workers} workers")
    print(f"| wall time | {seconds:.1f} s ({per:.2f} s per sample) |")
    print(
        f"| on disk | {size / 2**20:.1f} MiB ({size / args.corpus_samples / 2**20:.2f} per sample) |"
    )
    print(
        f"| extrapolated to {args.corpus_size} samples | {per * args.corpus_size / 60:.1f} min |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--channels", type=int, default=160)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--dense-latents", type=int, default=40)
    parser.add_argument("--ks-kernels", type=int, default=4)
    parser.add_argument("--ks-draws", type=int, default=400)
    parser.add_argument("--corpus-size", type=int, default=1500)
    parser.add_argument(
        "--corpus-samples", type=int, default=0, help="also write this many samples to disk"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.corpus_samples:
        corpus_run(args)

    sampler = TimedSampler()
    kernels, grids = [], []
    t0 = time.perf_counter()
    for i in range(args.samples):
        s = generate_dynlmc(
            args.channels,
            args.length,
            "drift",
            np.random.SeedSequence(0, spawn_key=(i,)),
            None,
            sampler,
        )
        margin = s.lag_margin
        grid = (np.arange(args.length + 2 * margin) - margin) / (args.length - 1)
        kernels += list(s.kernels)
        grids += [grid] * len(s.kernels)
    fast_total = time.perf_counter() - t0
    n_latents = len(kernels)
    fast_per_sample = fast_total / args.samples

    # the same latents, fast (fresh caches, as at the start of a corpus) and dense interleaved
    # latent by latent, so that a changing machine load hits both alike
    rng = np.random.default_rng(1)
    fresh = GPSampler()
    count = min(args.dense_latents, n_latents)
    pick = np.linspace(0, n_latents - 1, count).astype(int)  # spread over the samples
    fast_times, dense_times = [], []
    for index in pick:
        t0 = time.perf_counter()
        fresh.sample(kernels[index], grids[index], 1, rng)
        fast_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        dense_gp_sample(kernels[index], grids[index], 1, rng)
        dense_times.append(time.perf_counter() - t0)
    dense_per_latent = float(np.mean(dense_times))
    fast_same_subset = float(np.mean(fast_times))
    rng2 = np.random.default_rng(2)
    t0 = time.perf_counter()
    for k, g in zip(kernels, grids, strict=True):
        fresh.sample(k, g, 1, rng2)
    fast_gp_per_latent = (time.perf_counter() - t0) / n_latents
    sub = fresh

    tracemalloc.start()
    GPSampler().sample(kernels[0], grids[0], 1, rng)
    for k, g in zip(kernels[:10], grids[:10], strict=True):
        sub.sample(k, g, 1, rng)
    fast_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    for k, g in zip(kernels[:3], grids[:3], strict=True):
        dense_gp_sample(k, g, 1, rng)
    dense_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    pvalues = []
    for k, g in zip(kernels[: args.ks_kernels], grids[: args.ks_kernels], strict=True):
        a = GPSampler().sample(k, g, args.ks_draws, rng)
        b = dense_gp_sample(k, g, args.ks_draws, rng)
        w = rng.standard_normal(g.size)
        pvalues.append(
            (
                key(k),
                stats.ks_2samp(a @ w, b @ w).pvalue,
                stats.ks_2samp(a[:, 500], b[:, 500]).pvalue,
            )
        )

    latents_per_sample = n_latents / args.samples
    other_per_sample = (fast_total - sampler.seconds) / args.samples  # logits, softmax, mixing
    dense_sample = other_per_sample + latents_per_sample * dense_per_latent
    corpus_fast = fast_per_sample * args.corpus_size
    corpus_dense = dense_per_latent * latents_per_sample * args.corpus_size
    load = os.getloadavg()[0]
    print(f"# bench_kernelsynth: {args.samples} drift samples of {args.channels}x{args.length}")
    print(
        f"load average (1 min) at the end: {load:.2f}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print("| quantity | value |\n|---|---|")
    print(f"| latents generated | {n_latents} ({latents_per_sample:.1f} per sample) |")
    print(f"| fast: whole DynLMC sample (GP + logits + mixing) | {fast_per_sample:.3f} s |")
    print(
        f"| fast: GP per latent, {count} latents interleaved with dense (fresh caches) | {fast_same_subset * 1e3:.1f} ms |"
    )
    print(
        f"| dense eigh: GP per latent, the same {count} latents | {dense_per_latent * 1e3:.1f} ms |"
    )
    print(
        f"| **speed ratio dense / fast, same {count} latents, interleaved** | **{dense_per_latent / fast_same_subset:.1f}x** |"
    )
    print(
        f"| fast: GP per latent, all {n_latents} latents again (warm caches) | {fast_gp_per_latent * 1e3:.1f} ms |"
    )
    print(
        f"| speed ratio dense / fast (warm caches, steady state of a corpus) | {dense_per_latent / fast_gp_per_latent:.1f}x |"
    )
    print(f"| fast: non-GP part of a sample (logits, softmax, mixing) | {other_per_sample:.3f} s |")
    print(f"| dense: whole sample, estimated (non-GP part + dense GP) | {dense_sample:.2f} s |")
    ratio = dense_sample / fast_per_sample
    print(f"| **end-to-end ratio, whole samples (estimated)** | **{ratio:.1f}x** |")
    print(
        f"| extrapolated {args.corpus_size}-sample corpus, fast (whole samples) | {corpus_fast / 60:.1f} min |"
    )
    print(
        f"| extrapolated {args.corpus_size}-sample corpus, dense GP only | {corpus_dense / 3600:.2f} h |"
    )
    print(f"| peak traced memory, fast sampler (11 latents) | {fast_peak / 2**20:.1f} MiB |")
    print(f"| peak traced memory, dense sampler (3 latents) | {dense_peak / 2**20:.1f} MiB |")
    print(f"| routes taken (first pass) | {dict(sampler.stats)} |")
    print("\nKS fast vs dense (random projection, value at step 500):")
    for name, p1, p2 in pvalues:
        print(f"- `{name}`: p = {p1:.3f}, {p2:.3f}")


if __name__ == "__main__":
    main()
