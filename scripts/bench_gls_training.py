"""Training time per epoch, GLS vs independent likelihood, same data and budget (issue 4, bench 2;
issue 13: one column per GLS implementation, so each speed lever is measured on its own).

Builds each model from its config (the paper's hyperparameters), then times ``steps`` optimizer
steps (forward + backward + Adam) on the same pre-drawn batches for ``likelihood: independent``
and for ``likelihood: gls`` under each GLS implementation variant (``--variants``), alternating
all of them (w/o, w/ variant 1, w/ variant 2, ..., w/o, ...; best of ``--repeats`` each) in one
process, and prints the ratios. An epoch is 25 steps of 16 slices (400 slices, as the paper).
The paper's official code is 6-44x slower per epoch with GLS (spec-gls §7.4).

GLS variants (``probforecast.distributions.gls_options``; each gets its own copy of the same
initial GLS model and its own optimizer):

- ``old``: ``DR x DR`` capacitance, autograd through the Cholesky (before issue 13);
- ``analytic``: capacitance with the analytic ``(log|K|, u^T K^{-1} u)`` backward (lever 1);
- ``covariance-autograd``: automatic path choice (dense ``DB x DB`` covariance when ``B < R``),
  autograd through the Cholesky (lever 2 alone);
- ``new``: automatic path choice + analytic backward (the default since issue 13).

    python scripts/bench_gls_training.py --data-root ../shared/data [--steps 25] [--repeats 3]
        [--models gpvar] [--datasets synthetic exchange_rate_nips] [--variants old analytic new]
        [--out docs/bench_gls_training.md]

``--out``: the generated block (command, load, table) replaces the text between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` if the file has these markers (the prose
around them is kept), else the file is written with just the block.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch

from probforecast.cli import ProbForecastCLI
from probforecast.distributions import gls_options
from probforecast.utils.markdown_block import replace_marked_block
from probforecast.utils.timing import time_interleaved

warnings.filterwarnings("ignore")
torch.set_flush_denormal(True)  # as the CLI does
REPO = Path(__file__).resolve().parents[1]
MODELS = ("gpvar", "transformer")
DATASETS = ("synthetic", "exchange_rate_nips", "m4_hourly")
VARIANTS = {
    "old": {"method": "capacitance", "analytic_backward": False},
    "analytic": {"method": "capacitance", "analytic_backward": True},
    "covariance-autograd": {"method": "auto", "analytic_backward": False},
    "new": {"method": "auto", "analytic_backward": True},
}
BLOCK = "bench"  # <!-- bench:start --> ... <!-- bench:end -->


def build(config: str, data_root: str):
    cli = ProbForecastCLI(
        args=[
            "--config",
            str(REPO / config),
            "--data.root",
            data_root,
            "--trainer.logger",
            "false",
        ],
        run=False,
    )
    cli.datamodule.setup("fit")
    return cli.model, cli.datamodule


def epoch_runner(module, batches, options: dict | None = None):
    """A closure running one epoch (the given batches) of forward + backward + optimizer step,
    under ``gls_options(**options)`` if given."""
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    module.train()

    def run():
        with gls_options(**options) if options else nullcontext():
            for batch in batches:
                optimizer.zero_grad()
                module.forecaster.loss(batch).backward()
                optimizer.step()

    return run


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def write_block(path: Path, block: str) -> None:
    """Replace the ``bench`` block of ``path``; a file without one (or no file) becomes the
    block alone."""
    try:
        replace_marked_block(path, BLOCK, block)
    except (FileNotFoundError, ValueError):
        path.write_text(block + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--steps", type=int, default=25, help="optimizer steps per epoch (25 x 16 slices = 400)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed epochs per model")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["old", "analytic", "new"],
        choices=list(VARIANTS),
        help="GLS implementations to time (see the module docstring)",
    )
    parser.add_argument("--out", default=None, help="write the markdown block here")
    args = parser.parse_args()
    load_before = load_average()
    print(f"load average (1/5/15 min) before: {load_before}", flush=True)
    torch.manual_seed(0)
    rows = []
    for model in args.models:
        for dataset in args.datasets:
            indep, dm = build(f"configs/{model}/{dataset}_independent.yaml", args.data_root)
            gls, _ = build(f"configs/{model}/{dataset}.yaml", args.data_root)
            loader = iter(dm.train_dataloader())
            batches = [next(loader) for _ in range(args.steps)]
            runners = {"w/o": epoch_runner(indep, batches)}
            for name in args.variants:  # identical initial GLS models, one per variant
                runners[name] = epoch_runner(copy.deepcopy(gls), batches, VARIANTS[name])
            times = time_interleaved(runners, args.repeats)
            rows.append((model, dataset, times))
            ratios = "  ".join(
                f"{v} {times[v]:6.2f} s ({times[v] / times['w/o']:4.2f}x)" for v in args.variants
            )
            print(f"{model:12s} {dataset:20s} w/o {times['w/o']:6.2f} s  {ratios}", flush=True)
    load_after = load_average()
    print(f"load average (1/5/15 min) after: {load_after}", flush=True)

    header = "| model | dataset | w/o s/epoch | " + " | ".join(
        f"w/ {v} s/epoch" for v in args.variants
    )
    header += " | " + " | ".join(f"{v} / w/o" for v in args.variants) + " |"
    lines = [header, "|" + "---|" * (3 + 2 * len(args.variants))]
    for model, dataset, times in rows:
        cells = [f"{times[v]:.2f}" for v in args.variants]
        cells += [f"**{times[v] / times['w/o']:.2f}**" for v in args.variants]
        lines.append(f"| {model} | {dataset} | {times['w/o']:.2f} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    command = "OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_gls_training.py " + " ".join(
        sys.argv[1:]
    )
    block = "\n".join(
        [
            "```",
            command,
            "```",
            "",
            f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op thread(s); load average (1/5/15 min) "
            f"{load_before} before and {load_after} after; {args.steps} steps per epoch, "
            f"best of {args.repeats} alternating epochs.",
            "",
            table,
        ]
    )
    print(table)
    if args.out:
        write_block(Path(args.out), block)


if __name__ == "__main__":
    main()
