"""Large N: GPVar (GLS likelihood) sampling all N series jointly, and training on subsets.

Usage:
    python scripts/bench_scale.py                          # N = 200, 2000, 10000; markdown table
    python scripts/bench_scale.py --series 200 2000 --num-samples 50 --output docs/scaling.md

Rows, each measured in a fresh process (``--threads`` intra-op threads) so the peak resident
memory is that of the measured call alone (``VmHWM`` reset through ``/proc/self/clear_refs``
just before it, minus the resident size at that moment; Linux):

- ``sample``: ``GPVar.sample`` of one window, ``S`` samples, all ``N`` series jointly
  (hidden 16, rank 5, lags [1, 24], P = 48, Q = 24, GLS over the whole horizon), float32.
- ``dense``: the reference a naive implementation would need for the same joint law: one
  horizon step's ``N x N`` covariance ``V V^T + diag(d)``, its Cholesky and ``S`` draws, times
  ``Q`` steps (measured for one step and multiplied; skipped, and extrapolated as ``N^3``
  from the largest measured ``N``, above ``--dense-max``). It is the joint draw *alone*, with
  no network: the ratio column (dense draw / our whole sampler) shows where a dense joint
  draw would dominate the sampler's cost, not a like-for-like model comparison.
- ``train``: one optimizer step (loss + backward + Adam) on a batch of 8 windows of
  ``--subset`` series drawn from the ``N`` (``data.num_series_per_batch``); its cost does not
  depend on ``N`` except for the embedding table.

``--seed-scope`` instead times evaluation sampling of one batch of 8 windows with
``ForecastModule(sample_seed_scope="window")`` (the default, exact under DDP: one generator per
window, one ``sample`` call per batch) against ``"batch"`` (the global RNG seeded once), in the
same process, for GPVar (GLS) and the Transformer (GLS) at N = 20, and prints the ratio
(``scripts/bench_batched_sampling.py`` compares against the per-window loop).

The load average is printed: ratios survive a loaded machine, absolute times do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

P, Q, HIDDEN, RANK, LAGS = 48, 24, 16, 5, [1, 24]


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _measure(fn) -> dict:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
    except OSError:
        pass
    before = _rss_kib("VmRSS:")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": max(_rss_kib("VmHWM:") - before, 0) / 1024}


def _batch(n: int, b: int, series=None):
    import torch

    from probforecast.data.batch import ForecastBatch

    gen = torch.Generator().manual_seed(0)
    past = torch.randn(b, P, n, generator=gen)
    ids = series if series is not None else torch.arange(n)
    return ForecastBatch(
        past,
        torch.ones(b, P, n, dtype=torch.bool),
        torch.randn(b, P, 4, generator=gen),
        torch.randn(b, Q, 4, generator=gen),
        torch.randn(b, Q, n, generator=gen),
        torch.ones(b, Q, n, dtype=torch.bool),
        ids.expand(b, n).clone(),
        torch.zeros(b, n),
        torch.ones(b, n),
        torch.full((b,), P, dtype=torch.long),
    )


def _model(n: int):
    from probforecast.models import GPVar

    return GPVar(
        target_dim=n,
        context_length=P,
        prediction_length=Q,
        num_time_features=4,
        hidden_size=HIDDEN,
        rank=RANK,
        lags=LAGS,
        likelihood="gls",
    )


def child(mode: str, n: int, samples: int, subset: int) -> dict:
    import torch

    torch.manual_seed(0)
    if mode == "sample":
        model, batch = _model(n).eval(), _batch(n, 1)
        with torch.no_grad():
            model.sample(_batch(n, 1), 2)  # warm-up
            out = _measure(lambda: model.sample(batch, samples))
        return out
    if mode == "dense":
        gen = torch.Generator().manual_seed(0)
        factor = torch.randn(n, RANK, generator=gen) / RANK**0.5
        diag = torch.rand(n, generator=gen) + 0.1

        def one_step():
            cov = factor @ factor.T + torch.diag(diag)
            tril = torch.linalg.cholesky(cov)
            return torch.randn(samples, n) @ tril.T

        one_step() if n <= 500 else None  # warm-up on small sizes only
        out = _measure(one_step)
        out["seconds"] *= Q  # Q horizon steps, each its own N x N covariance
        return out
    if mode == "train":
        model = _model(n)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        series = torch.randperm(n)[:subset].sort().values
        batch = _batch(subset, 8, series)

        def step():
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()

        step()
        return _measure(step)
    raise ValueError(mode)


def seed_scope_table(num_samples: int, repeats: int = 1, windows: int = 8) -> str:
    import statistics

    import torch

    from probforecast.models import GPVar, TransformerForecaster
    from probforecast.models.module import ForecastModule

    n, rows = 20, []
    for cls in (GPVar, TransformerForecaster):
        forecaster = cls(
            target_dim=n,
            context_length=P,
            prediction_length=Q,
            num_time_features=4,
            hidden_size=HIDDEN,
            rank=RANK,
            lags=LAGS,
            likelihood="gls",
        ).eval()
        batch = _batch(n, windows)
        batch.window_start = torch.arange(windows) + P
        times = {}
        for scope in ("window", "batch"):
            module = ForecastModule(forecaster, num_samples=num_samples, sample_seed_scope=scope)
            with torch.no_grad():
                module.draw_samples(batch, 2)
                runs = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    module.draw_samples(batch, num_samples)
                    runs.append(time.perf_counter() - start)
            times[scope] = statistics.median(runs)
        rows.append(
            f"| {cls.__name__} | {times['window']:.3f} | {times['batch']:.3f} "
            f"| {times['window'] / times['batch']:.2f}x |"
        )
    head = [
        f"`python scripts/bench_scale.py --seed-scope --num-samples {num_samples}` ({windows} windows, "
        f"N = {n}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
        "",
        "| forecaster | per-window seeding: s | per-batch seeding: s | ratio |",
        "|---|---:|---:|---:|",
    ]
    return "\n".join(head + rows) + "\n"


def run_child(args, mode: str, n: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        str(n),
        "--num-samples",
        str(args.num_samples),
    ]
    cmd += ["--subset", str(args.subset)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--series", type=int, nargs="+", default=[200, 2000, 10000])
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--subset", type=int, default=20)
    parser.add_argument("--dense-max", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=400)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--seed-scope", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child[0], int(args.child[1]), args.num_samples, args.subset)
        sys.stdout.write(json.dumps(result) + "\n")
        return
    if args.seed_scope:
        text = seed_scope_table(args.num_samples)
        sys.stdout.write(text)
        if args.output:
            args.output.write_text(text)
        return

    load = os.getloadavg()[0]
    lines = [
        f"`python scripts/bench_scale.py --series {' '.join(map(str, args.series))} "
        f"--num-samples {args.num_samples} --subset {args.subset} --threads {args.threads}` "
        f"(load average {load:.1f} on {os.cpu_count()} cores at start)",
        "",
        "| N | sample: s | sample: peak MiB | dense draw alone: s | dense: peak MiB "
        "| dense draw / our sampler "
        "| train step (subset): s | train: peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    dense_last = None
    for n in args.series:
        ours = run_child(args, "sample", n)
        if n <= args.dense_max:
            dense = run_child(args, "dense", n)
            dense_last = (n, dense)
            dense_txt = f"{dense.get('seconds', float('nan')):.3f}"
            dense_mem = f"{dense.get('peak_mib', float('nan')):.0f}"
            dense_s = dense.get("seconds")
        elif dense_last and "seconds" in dense_last[1]:
            m, ref = dense_last
            dense_s = ref["seconds"] * (n / m) ** 3
            dense_txt = f"~{dense_s:.1f} (N^3 from N={m})"
            dense_mem = f"~{4 * n * n * 2 / 2**20:.0f} (2 N^2 floats)"
        else:
            dense_s, dense_txt, dense_mem = None, "n/a", "n/a"
        train = run_child(args, "train", n)
        ratio = f"{dense_s / ours['seconds']:.1f}x" if dense_s and "seconds" in ours else "n/a"

        def fmt(r, key, spec):
            return format(r[key], spec) if key in r else r.get("error", "n/a")

        lines.append(
            f"| {n} | {fmt(ours, 'seconds', '.3f')} | {fmt(ours, 'peak_mib', '.0f')} | {dense_txt} "
            f"| {dense_mem} | {ratio} | {fmt(train, 'seconds', '.3f')} | {fmt(train, 'peak_mib', '.0f')} |"
        )
        sys.stderr.write(lines[-1] + "\n")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
