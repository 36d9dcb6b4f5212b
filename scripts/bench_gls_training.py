"""Training time per epoch, GLS vs independent likelihood, same data and budget (issue 4, bench 2).

Builds each model from its config (the paper's hyperparameters), then times ``steps`` optimizer
steps (forward + backward + Adam) on the same pre-drawn batches for ``likelihood: independent``
and ``likelihood: gls``, alternating the two (best of ``--repeats`` each), and prints the ratio.
An epoch is 25 steps of 16 slices (400 slices, as
the paper). The paper's official code is 6-44x slower per epoch with GLS (spec-gls §7.4).

    python scripts/bench_gls_training.py --data-root ../shared/data [--steps 25] [--out docs/bench_gls_training.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

from probforecast.cli import ProbForecastCLI

warnings.filterwarnings("ignore")
torch.set_flush_denormal(True)  # as the CLI does
REPO = Path(__file__).resolve().parents[1]


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


def epoch_runner(module, batches):
    """A closure running one epoch (the given batches) of forward + backward + optimizer step."""
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    module.train()

    def run():
        for batch in batches:
            optimizer.zero_grad()
            module.forecaster.loss(batch).backward()
            optimizer.step()

    return run


def time_interleaved(runners: dict, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` epoch time of each runner, alternating them (A B A B ...) so that a
    change of load on a shared machine hits both alike."""
    for run in runners.values():
        run()  # warm-up
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--steps", type=int, default=25, help="optimizer steps per epoch (25 x 16 slices = 400)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed epochs per model")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for model in ("gpvar", "transformer"):
        for dataset in ("synthetic", "exchange_rate_nips", "m4_hourly"):
            runners = {}
            batches = None
            for likelihood, suffix in (("independent", "_independent"), ("gls", "")):
                module, dm = build(f"configs/{model}/{dataset}{suffix}.yaml", args.data_root)
                if batches is None:
                    loader = iter(dm.train_dataloader())
                    batches = [next(loader) for _ in range(args.steps)]
                runners[likelihood] = epoch_runner(module, batches)
            times = time_interleaved(runners, args.repeats)
            ratio = times["gls"] / times["independent"]
            rows.append((model, dataset, times["independent"], times["gls"], ratio))
            print(
                f"{model:12s} {dataset:20s} w/o {times['independent']:7.2f} s  w/ {times['gls']:7.2f} s  ratio {ratio:5.2f}",
                flush=True,
            )
    lines = [
        "| model | dataset | w/o s/epoch | w/ s/epoch | w/ / w/o |",
        "|---|---|---|---|---|",
        *[f"| {m} | {d} | {a:.2f} | {b:.2f} | {r:.2f} |" for m, d, a, b, r in rows],
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
