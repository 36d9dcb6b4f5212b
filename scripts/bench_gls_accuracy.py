"""Accuracy of GPVar / Transformer without (w/o) and with (w/) the GLS likelihood (issue 4, bench 3).

For each model x dataset x likelihood and each training seed (``--seeds``): fit from the config
with a CPU budget (``--max-steps``), keep the checkpoint with the best validation CRPS, then
evaluate the test windows ``--repeats`` times with different sampling seeds (100 samples each, as
the paper). Reported: mean +- std over training seeds (each seed's value is the mean over its
sampling repeats) of CRPS, CRPS-sum and the energy score, beside the paper's Table 1/5/8 numbers
where they exist, and for w/ how many seeds beat w/o of the same seed on CRPS-sum. On the
synthetic dataset an "oracle" row scores samples from the true predictive distribution
(``probforecast.data.synthetic.correlated_seasonal_oracle``): the floor of every column.

    python scripts/bench_gls_accuracy.py --data-root ../shared/data --max-steps 500 --seeds 1 2 3 \
        --out docs/gls_accuracy.md [--models gpvar transformer] [--datasets synthetic exchange_rate_nips m4_hourly]
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch

from probforecast.data.synthetic.correlated_seasonal_oracle import oracle_samples
from probforecast.evaluate import QUIET_RUN_ARGS, backtest, fit_run, format_mean_std
from probforecast.metrics import build_metric_collection

warnings.filterwarnings("ignore")
torch.set_flush_denormal(True)  # as the CLI does
REPO = Path(__file__).resolve().parents[1]
METRICS = ("crps", "crps_sum", "energy_score")
# spec-gls §6 (Tables 5, 1, 8): (CRPS, CRPS-sum) for w/o and w/; None where the paper has no row
PAPER = {
    ("gpvar", "exchange_rate_nips"): {"independent": (0.0171, 0.0068), "gls": (0.0141, 0.0117)},
    ("gpvar", "m4_hourly"): {"independent": (0.1174, 0.0613), "gls": (0.1237, 0.0358)},
    ("transformer", "exchange_rate_nips"): {
        "independent": (0.0092, 0.0055),
        "gls": (0.0081, 0.0042),
    },
    ("transformer", "m4_hourly"): {"independent": (0.1306, 0.0651), "gls": (0.1189, 0.0616)},
}


def run_one(
    model: str, dataset: str, likelihood: str, seed: int, args, root: Path
) -> dict[str, object]:
    suffix = "" if likelihood == "gls" else "_independent"
    run_dir = root / f"{model}_{dataset}_{likelihood}_seed{seed}"
    run = fit_run(
        [
            "--config",
            str(REPO / "configs" / model / f"{dataset}{suffix}.yaml"),
            "--seed_everything",  # after --config, which sets its own seed
            str(seed),
            "--data.root",
            args.data_root,
            "--trainer.default_root_dir",
            str(run_dir),
            "--trainer.max_steps",
            str(args.max_steps),
            *QUIET_RUN_ARGS,
            "--data.num_val_windows",  # the rolling protocol's option (max_val_windows is not read)
            str(args.val_windows),
            "--trainer.check_val_every_n_epoch",
            str(args.check_val_every),
            *[f"--{kv}" for kv in args.set if likelihood == "gls"],
        ]
    )
    scores = backtest(run.module, run.datamodule, repeats=args.repeats)
    return {**run.fit, "dm": run.datamodule, **{m: scores[m] for m in METRICS}}


def oracle_scores(dm, repeats: int) -> dict[str, list[float]]:
    """Scores of 100 samples per window from the true law of the synthetic data (raw scale)."""
    truth = dm.loaded.ground_truth
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    for repeat in range(repeats):
        rng = np.random.default_rng(1000 + repeat)
        metrics = build_metric_collection(metrics=list(METRICS))
        for batch in dm.test_dataloader():
            q = batch.future_target.shape[1]
            draws = [
                oracle_samples(truth, int(s), dm.context_length, q, 100, rng)
                for s in batch.window_start
            ]
            samples = torch.tensor(np.stack(draws), dtype=torch.float32)
            metrics.update(samples, batch.unscale(batch.future_target), mask=batch.future_observed)
        for m, v in metrics.compute().items():
            scores[m].append(float(v))
    return scores


def fmt(values: list[float]) -> str:
    return format_mean_std(values, sep="±")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds")
    parser.add_argument("--repeats", type=int, default=2, help="sampling repeats per seed")
    parser.add_argument("--check-val-every", type=int, default=2, help="epochs between validations")
    parser.add_argument("--val-windows", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=["gpvar", "transformer"])
    parser.add_argument(
        "--datasets", nargs="+", default=["synthetic", "exchange_rate_nips", "m4_hourly"]
    )
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "bench_gls_accuracy"))
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="CLI override for the GLS runs, e.g. model.forecaster.init_args.reg_w=0",
    )
    parser.add_argument(
        "--likelihoods", nargs="+", default=["independent", "gls"], choices=["independent", "gls"]
    )
    args = parser.parse_args()
    header = (
        "| model | dataset | likelihood | CRPS | CRPS-sum | energy score | paper CRPS | paper CRPS-sum | w/ beats w/o on CRPS-sum (seeds) | fit s per seed (steps) |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [header]
    print(header, flush=True)

    def emit(row: str) -> None:
        rows.append(row)
        print(row, flush=True)
        if args.out:
            Path(args.out).write_text("\n".join(rows) + "\n")

    oracle_done = False
    for model in args.models:
        for dataset in args.datasets:
            per_lik = {}
            for likelihood in args.likelihoods:
                runs = [
                    run_one(model, dataset, likelihood, seed, args, Path(args.runs_dir))
                    for seed in args.seeds
                ]
                per_lik[likelihood] = runs
                col = {m: [r[m] for r in runs] for m in METRICS}
                paper = PAPER.get((model, dataset), {}).get(likelihood)
                paper_cols = f"{paper[0]} | {paper[1]}" if paper else "– | –"
                name = "w/o" if likelihood == "independent" else "w/ (GLS)"
                wins = "–"
                if likelihood == "gls" and "independent" in per_lik:
                    base = per_lik["independent"]
                    won = sum(
                        g["crps_sum"] < i["crps_sum"] for g, i in zip(runs, base, strict=True)
                    )
                    wins = f"{won}/{len(runs)}"
                fit = statistics.fmean(r["fit_seconds"] for r in runs)
                emit(
                    f"| {model} | {dataset} | {name} | {fmt(col['crps'])} | {fmt(col['crps_sum'])} | "
                    f"{fmt(col['energy_score'])} | {paper_cols} | {wins} | {fit:.0f} ({runs[0]['steps']}) |"
                )
            if dataset == "synthetic" and not oracle_done and "gls" in per_lik:
                oracle = oracle_scores(per_lik["gls"][0]["dm"], args.repeats)
                emit(
                    f"| oracle | synthetic | true law | {fmt(oracle['crps'])} | "
                    f"{fmt(oracle['crps_sum'])} | {fmt(oracle['energy_score'])} | – | – | – | – |"
                )
                oracle_done = True


if __name__ == "__main__":
    main()
