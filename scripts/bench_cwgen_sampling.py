"""Sampling throughput (samples per second) of CW-Diff and CW-Flow against their Raw versions.

Same network sizes and step counts for every variant (the ETTh1 config sizes by default, random
weights: throughput does not depend on training). One "sample" is one ``[Q, N]`` trajectory.
CW variants include the per-window JMCE forward and the whitening (eigh for ``symmetric``, a
triangular factor for ``cholesky``); Raw skips both. Prints samples/s and the ratio CW / Raw.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_cwgen_sampling.py [--windows 4 --samples 25]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models import JMCE, CWDiff, CWFlow, JMCESpec
from probforecast.models.module import ForecastModule

JMCE_SIZES = dict(d_model=512, n_heads=8, e_layers=2, d_layers=1, d_ff=1024, dropout=0.1)
NET_SIZES = dict(d_model=128, n_heads=8, num_layers=3, d_ff=256, dropout=0.1)


def batch(b: int, p: int, q: int, n: int, f: int) -> ForecastBatch:
    x = torch.randn(b, p + q, n).cumsum(1) * 0.1
    return ForecastBatch(
        x[:, :p], torch.ones(b, p, n, dtype=torch.bool), torch.randn(b, p, f), torch.randn(b, q, f),
        x[:, p:], torch.ones(b, q, n, dtype=torch.bool), torch.arange(n).expand(b, n),
        torch.zeros(b, n), torch.ones(b, n), torch.arange(b),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--diffusion-steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--flow-steps", type=int, default=10, help="Euler steps")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings; median")
    parser.add_argument("--context", type=int, default=168)
    parser.add_argument("--horizon", type=int, default=192)
    parser.add_argument("--dim", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    f = 4
    facts = dict(target_dim=args.dim, context_length=args.context,
                 prediction_length=args.horizon, num_time_features=f)  # fmt: skip
    data = batch(args.windows, args.context, args.horizon, args.dim, f)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "jmce.ckpt"
        jmce = JMCE(**facts, cov_window=95, **JMCE_SIZES)
        torch.save({"state_dict": ForecastModule(jmce, num_samples=2).state_dict()}, ckpt)
        spec = JMCESpec(str(ckpt), cov_window=95, **JMCE_SIZES)
        variants = {
            "raw": dict(prior="standard"),
            "cw (two-stage, eigh)": dict(jmce=spec, whitening="symmetric"),
            "cw (two-stage, Cholesky)": dict(jmce=spec, whitening="cholesky"),
        }
        print(f"threads={torch.get_num_threads()} B={args.windows} S={args.samples} "
              f"P={args.context} Q={args.horizon} N={args.dim}; net {NET_SIZES}, JMCE {JMCE_SIZES}")  # fmt: skip
        print("| model | variant | steps | samples/s | ratio to Raw |")
        print("|---|---|---|---|---|")
        for cls, steps in ((CWDiff, args.diffusion_steps), (CWFlow, args.flow_steps)):
            models = {}
            for name, kw in variants.items():
                torch.manual_seed(0)
                models[name] = cls(**facts, sampling_steps=steps, **NET_SIZES, **kw).eval()
                models[name].sample(data, 2)  # warm-up
            times = {name: [] for name in models}
            for _ in range(args.repeats):  # interleaved, so machine load hits all variants alike
                for name, model in models.items():
                    t0 = time.perf_counter()
                    model.sample(data, args.samples)
                    times[name].append(time.perf_counter() - t0)
            rates = {
                k: args.windows * args.samples / statistics.median(v) for k, v in times.items()
            }
            for name, rate in rates.items():
                print(
                    f"| {cls.__name__} | {name} | {steps} | {rate:.1f} | {rate / rates['raw']:.2f} |"
                )


if __name__ == "__main__":
    main()
