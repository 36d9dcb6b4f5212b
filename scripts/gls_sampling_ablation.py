"""Re-test finished GLS-family runs under several values of one sampling-only option.

Re-tests ``reproduce_gls.py`` runs (their best checkpoints, no refit) once per value of
``--option`` (an ``init_args`` key of the forecaster that, on a trained checkpoint, changes only
how it predicts), with the same
sampling seeds for every value, and prints CRPS / CRPS-sum / energy score per seed and value:

- ``sample_group_size``: independent groups of series (the official test loader) vs jointly.
  Per-series CRPS must agree within Monte-Carlo noise (a series' marginal does not depend on the
  grouping); CRPS-sum and the energy score may not.
- ``future_lag_leak``: the official predictor's true horizon values in lagged inputs vs none.
- ``attention_window`` (Transformer): ``0`` is the official predictor's full growing attention
  (horizon step ``h`` attends to the ``P + h`` positions before it) on a model trained, as
  there, with ``P``-token contexts; ``null`` is the training window ``P`` (ours).

    python scripts/gls_sampling_ablation.py --dataset m4_hourly --model gpvar \\
        --likelihood independent --tag groups20 --seeds 1 2 --option sample_group_size --values 20 null
    python scripts/gls_sampling_ablation.py --dataset m4_hourly --model gpvar \\
        --likelihood independent --tag groups20 --seeds 1 2 --option future_lag_leak --values none at_lag
    python scripts/gls_sampling_ablation.py --dataset m4_hourly --model transformer \
        --likelihood independent --seeds 1 2 3 --repeats 1 --option attention_window --values null 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch

from probforecast.evaluate import QUIET_RUN_ARGS, backtest, reload_run, window_mean_scorer

REPO = Path(__file__).resolve().parents[1]
SAMPLING_OPTIONS = ("sample_group_size", "future_lag_leak", "attention_window")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True, choices=["gpvar", "transformer"])
    parser.add_argument("--likelihood", required=True, choices=["independent", "gls"])
    parser.add_argument("--tag", default="")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--option", required=True, choices=SAMPLING_OPTIONS)
    parser.add_argument("--values", nargs="+", required=True, help="e.g. 20 null")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "reproduce_gls"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="the runs' own CLI overrides (their --set), e.g. trainer.gradient_clip_val=1.25")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    suffix = "" if args.likelihood == "gls" else "_independent"
    tag = f"_{args.tag}" if args.tag else ""
    print(f"| seed | {args.option} | CRPS | CRPS-sum | energy score |\n|---|---|---|---|---|")
    for seed in args.seeds:
        out = Path(args.runs_dir) / args.dataset / f"{args.model}_{args.likelihood}{tag}_seed{seed}"
        for value in args.values:
            cli_args = [
                "--config", str(REPO / "configs" / args.model / f"{args.dataset}{suffix}.yaml"),
                "--config", str(REPO / "configs" / "protocols" / "gls_paper.yaml"),
                "--seed_everything", str(seed), "--data.seed", str(seed),
                "--data.root", args.data_root, "--trainer.default_root_dir", str(out),
                *QUIET_RUN_ARGS, *[f"--{kv}" for kv in args.set],
                f"--model.forecaster.init_args.{args.option}={value}",
            ]  # fmt: skip
            run = reload_run(out, cli_args, use_config_forecaster=True)
            pl.seed_everything(seed, verbose=False)
            s = backtest(
                run.module, run.datamodule, repeats=args.repeats, scorer=window_mean_scorer(100)
            )
            print(f"| {seed} | {value} | {s['crps']:.4f} ± {s['crps_repeat_std']:.4f} | "
                  f"{s['crps_sum']:.4f} | {s['energy_score']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
