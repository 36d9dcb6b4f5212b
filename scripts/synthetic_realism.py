"""Realism diagnostics (spec-dynlmc §4, the paper's Figure 1): KernelSynth, LMC and every DynLMC
variant against ETTh1, ETTm1, weather and exchange.

Real datasets are cut into non-overlapping segments of ``--length`` steps (at most
``--segments``, evenly spread); each synthetic generator contributes ``--samples`` samples of
``--channels x --length`` (corpus seeds). Every sample/segment goes through the same estimators
(``transform=diff``, windows of 96, ``l_max = 32``, at most 64 channels). Writes
``docs/figures/synthetic_drift.png``, ``docs/figures/synthetic_lags.png``, one
``docs/figures/synthetic_variant_<name>.png`` per generator, and the markdown table (printed and
written into the marked block of ``--doc``).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/synthetic_realism.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

from probforecast.data.diagnostics import (
    argmax_lags,
    correlation_drift,
    lag_histogram,
    lag_summary,
    segments,
)
from probforecast.data.loading import grouped_arrays, load_dataset
from probforecast.data.synthetic.store import generate_sample
from probforecast.utils.markdown_block import replace_marked_block
from probforecast.viz.diagnostics import (
    correlation_drift_chart,
    dynlmc_sample_chart,
    lag_histogram_chart,
)

REAL = {"ETTh1": "etth1", "ETTm1": "ettm1", "weather": "weather", "exchange": "exchange_ltsf"}
SYNTHETIC = ["kernelsynth", "lmc", "dynlmc_drift", "dynlmc_lag", "dynlmc_regime", "dynlmc_combined"]
MAX_LAG = 32


def real_samples(name: str, root: str, length: int, count: int, cache: str) -> list[np.ndarray]:
    values = grouped_arrays(load_dataset(name, root=root, cache_dir=cache).datasets)[0]  # [T, N]
    return segments(values, length, count)


def summarise(samples: list[np.ndarray]) -> tuple[dict, np.ndarray, np.ndarray]:
    drifts = [correlation_drift(s) for s in samples]
    lags = np.concatenate([argmax_lags(s, MAX_LAG) for s in samples])
    row = {
        "D_std": float(np.mean([d.d_std for d in drifts])),
        "D_step": float(np.mean([d.d_step for d in drifts])),
        "D_glob": float(np.mean([d.d_glob for d in drifts])),
    }
    return row, np.concatenate([d.pair_std for d in drifts]), lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--doc", default="docs/synthetic.md", help="'' to only print the table")
    parser.add_argument(
        "--marker",
        default="realism-table",
        help="the block <!-- MARKER:start --> ... <!-- MARKER:end --> of --doc that gets the table",
    )
    parser.add_argument("--no-figures", action="store_true", help="write only the table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows, pair_std, lags = {}, {}, {}
    with tempfile.TemporaryDirectory() as cache:
        for label, name in REAL.items():
            rows[label], pair_std[label], lags[label] = summarise(
                real_samples(name, args.data_root, args.length, args.segments, cache)
            )
    pooled_real = np.concatenate([lags[k] for k in REAL])
    for name in SYNTHETIC:
        samples = [
            generate_sample(name, i, args.channels, args.length, 0) for i in range(args.samples)
        ]
        rows[name], pair_std[name], lags[name] = summarise([s.series.T for s in samples])
        if not args.no_figures:
            fig = dynlmc_sample_chart(samples[0], title=f"{name}: sample 0")
            fig.savefig(out / f"synthetic_variant_{name}.png", dpi=110)

    if not args.no_figures:
        correlation_drift_chart(pair_std).savefig(out / "synthetic_drift.png", dpi=110)
        hists = {k: lag_histogram(v, MAX_LAG) for k, v in lags.items()}
        lag_histogram_chart(hists, MAX_LAG).savefig(out / "synthetic_lags.png", dpi=110)

    lines = [
        "| dataset | D_std | D_step | D_glob | P(ℓ*=0) | mean abs ℓ* | W1 to pooled real lags |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in rows.items():
        summary = lag_summary(lags[label], pooled_real)
        lines.append(
            f"| {label} | {row['D_std']:.3f} | {row['D_step']:.3f} | {row['D_glob']:.3f} | "
            f"{summary['p_zero']:.3f} | {summary['mean_abs']:.2f} | {summary['wasserstein']:.2f} |"
        )
    table = "\n".join(lines)
    print(
        f"segments/samples of {args.length} steps; real: <= {args.segments} segments; "
        f"synthetic: {args.samples} samples x {args.channels} channels\n\n{table}"
    )
    if args.doc:
        replace_marked_block(args.doc, args.marker, table)


if __name__ == "__main__":
    main()
