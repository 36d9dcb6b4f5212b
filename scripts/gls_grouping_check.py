"""Does sampling in groups of series change a GLS-family model's per-series scores?

Re-tests finished ``reproduce_gls.py`` runs (their best checkpoints) twice with the same
sampling seeds: in independent groups of ``--group`` series (the official test loader) and
jointly over all series (``sample_group_size: null``). Per-series CRPS must agree within
Monte-Carlo noise (the marginal of each series does not depend on the grouping); CRPS-sum and
the energy score may not (they see the cross-series dependence).

    python scripts/gls_grouping_check.py --dataset m4_hourly --model gpvar \\
        --likelihood independent --tag groups20 --seeds 1 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch

from probforecast.evaluate import QUIET_RUN_ARGS, backtest, reload_run, window_mean_scorer

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True, choices=["gpvar", "transformer"])
    parser.add_argument("--likelihood", required=True, choices=["independent", "gls"])
    parser.add_argument("--tag", default="")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "reproduce_gls"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    suffix = "" if args.likelihood == "gls" else "_independent"
    tag = f"_{args.tag}" if args.tag else ""
    print("| seed | sampling | CRPS | CRPS-sum | energy score |\n|---|---|---|---|---|")
    for seed in args.seeds:
        out = Path(args.runs_dir) / args.dataset / f"{args.model}_{args.likelihood}{tag}_seed{seed}"
        for group in (str(args.group), "null"):
            cli_args = [
                "--config", str(REPO / "configs" / args.model / f"{args.dataset}{suffix}.yaml"),
                "--config", str(REPO / "configs" / "protocols" / "gls_paper.yaml"),
                "--seed_everything", str(seed), "--data.seed", str(seed),
                "--data.root", args.data_root, "--trainer.default_root_dir", str(out),
                *QUIET_RUN_ARGS, f"--model.forecaster.init_args.sample_group_size={group}",
            ]  # fmt: skip
            run = reload_run(out, cli_args, use_config_forecaster=True)
            pl.seed_everything(seed, verbose=False)
            s = backtest(
                run.module, run.datamodule, repeats=args.repeats, scorer=window_mean_scorer(100)
            )
            name = "joint" if group == "null" else f"groups of {group}"
            print(f"| {seed} | {name} | {s['crps']:.4f} ± {s['crps_repeat_std']:.4f} | "
                  f"{s['crps_sum']:.4f} | {s['energy_score']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
