"""VolDy-VAE on small, non-stationary weekly data (issue 14 item 4): why the central 90 %
interval under-covers, measured on data of the ILI shape (7 series, 966 weekly steps, L = 36,
H = 24, 7:1:2 split, loaded from a CSV path as a new user would).

Data (written as CSVs under ``--out``):

- ``exchange_weekly``: exchange_rate (daily, 8 series) averaged per week, the last 966 weeks of
  the first 7 series;
- ``level_shift``: 7 synthetic weekly series with a yearly epidemic-like peak whose height drifts
  and jumps, level shifts at random weeks and noise proportional to the level (seeded);
- ``etth1_966``: the first 966 hourly steps of ETTh1 (short but not weekly; a control).

Variants (each an init_arg / data option on top of ``configs/voldy_vae/etth1.yaml`` with the
default ratio protocol, i.e. what a user gets from a CSV path):

    python scripts/voldy_small_data.py run --variants base rescale wrap epoch_pass val_stride1 \
        --datasets exchange_weekly level_shift --seeds 1 2 --jsonl runs/voldy_small.jsonl
    python scripts/voldy_small_data.py table runs/voldy_small.jsonl

Every run is scored on every test start (stride 1, pooled) with 100 samples: ProbTS CRPS,
NMAE, the coverage of the central 90 % interval, and ``sigma/|err|``: the mean predicted
standard deviation over the mean absolute error of the median (about 1.25 for a calibrated
Gaussian), which separates "sigma too small" from "mean too far off".
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from probforecast.evaluate import JsonLines, backtest, fit_run, format_mean_std, group_records
from probforecast.metrics import build_metric_collection

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parents[1]
WEEKS, SERIES = 966, 7
SCORES = ("crps_quantile", "nmae", "coverage_90", "sigma_over_abs_err")

#: variant -> (forecaster init_args, other CLI options)
VARIANTS: dict[str, tuple[list[str], list[str]]] = {
    "base": ([], []),
    "rescale": (["rescale_sigma=true"], []),
    "wrap": (["padding=wrap"], []),
    # one epoch = one pass over the ~600 training windows instead of 100 batches (~10 passes)
    "epoch_pass": ([], ["--data.num_batches_per_epoch=10"]),
    # every validation start (74 windows) instead of every 24th (4 windows)
    "val_stride1": ([], ["--data.val_stride=1"]),
    "epoch_pass_rescale": (["rescale_sigma=true"], ["--data.num_batches_per_epoch=10"]),
    "epoch_pass_val1": ([], ["--data.num_batches_per_epoch=10", "--data.val_stride=1"]),
    # heavier tails: a learned Student-t per series
    "student_t": (["likelihood=student_t"], []),
    "rescale_student_t": (["rescale_sigma=true", "likelihood=student_t"], []),
    "epoch_pass_rescale_student_t": (
        ["rescale_sigma=true", "likelihood=student_t"],
        ["--data.num_batches_per_epoch=10"],
    ),
}


def exchange_weekly(data_root: Path) -> pd.DataFrame:
    with gzip.open(data_root / "exchange_rate" / "exchange_rate.csv.gz") as fh:
        frame = pd.read_csv(fh, parse_dates=["date"]).set_index("date")
    weekly = frame.iloc[:, :SERIES].resample("W").mean().iloc[-WEEKS:]
    return weekly.reset_index()


def level_shift(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(WEEKS)
    columns = {}
    for i in range(SERIES):
        height = np.exp(np.cumsum(rng.normal(0, 0.03, WEEKS)))  # drifting peak height
        jumps = np.cumsum(np.where(rng.random(WEEKS) < 0.004, rng.normal(0, 0.6, WEEKS), 0.0))
        peak = np.exp(-0.5 * ((t + 7 * i) % 52 - 26) ** 2 / 16.0)
        level = 1.0 + jumps.clip(-0.8) + 3.0 * height * peak + 0.3 * i
        columns[f"s{i}"] = level * (1 + 0.08 * rng.standard_normal(WEEKS))
    dates = pd.date_range("2002-01-06", periods=WEEKS, freq="W")
    return pd.DataFrame({"date": dates, **columns})


def etth1_966(data_root: Path) -> pd.DataFrame:
    with gzip.open(data_root / "ETTh1" / "ETTh1.csv.gz") as fh:
        return pd.read_csv(fh).iloc[:WEEKS]


def write_datasets(data_root: Path, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "exchange_weekly": lambda: exchange_weekly(data_root),
        "level_shift": level_shift,
        "etth1_966": lambda: etth1_966(data_root),
    }
    paths = {}
    for name, make in frames.items():
        paths[name] = out / f"{name}.csv"
        if not paths[name].exists():
            make().to_csv(paths[name], index=False)
    return paths


def cli_args(csv: Path, variant: str, seed: int, run_dir: Path, args) -> list[str]:
    init_args, options = VARIANTS[variant]
    return [
            *("--config", str(REPO / "configs" / "voldy_vae" / "etth1.yaml")),
            *("--config", str(REPO / "configs" / "voldy_vae" / "overlays" / "ili.yaml")),
            f"--data.dataset={csv}",
            "--data.protocol=default",
            f"--data.cache_dir={args.out / 'cache'}",
            f"--seed_everything={seed}",
            f"--data.seed={seed}",
            f"--trainer.default_root_dir={run_dir}",
            f"--trainer.max_epochs={args.epochs}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--forecast_plot.every_n_val_epochs=0",
            *options,
            *(f"--model.forecaster.init_args.{a}" for a in init_args),
    ]  # fmt: skip


@torch.no_grad()
def every_test_start(datamodule) -> tuple[int, ...]:
    """Every start from the first test window to the last (stride 1)."""
    split = datamodule.split
    return tuple(range(split.test_starts[0], split.test_starts[-1] + 1))


def score(module, datamodule, num_samples: int) -> dict[str, float]:
    """Every test start (stride 1), pooled: CRPS, NMAE, Cov90 and sigma / |median error|."""
    from probforecast.data.windows import EvaluationWindows

    starts = every_test_start(datamodule)
    loader = datamodule._loader(
        EvaluationWindows(datamodule.prepared.windows, starts), datamodule.eval_batch_size
    )
    metrics = build_metric_collection(metrics=["crps_quantile", "nmae", "coverage"])
    module.eval()
    spread, error = 0.0, 0.0
    for batch in loader:
        samples = batch.unscale(module.draw_samples(batch, num_samples))
        target = batch.unscale(batch.future_target)
        metrics.update(samples, target, mask=batch.future_observed)
        spread += float(samples.std(1).mean())
        error += float((samples.median(1).values - target).abs().mean())
    out = {k: float(v) for k, v in metrics.compute().items()}
    out["sigma_over_abs_err"] = spread / error
    return out


def run(args) -> None:
    paths = write_datasets(args.data_root, args.out)
    for dataset in args.datasets:
        for variant in args.variants:
            for seed in args.seeds:
                run_dir = args.out / "runs" / f"{dataset}_{variant}_s{seed}"
                run = fit_run(cli_args(paths[dataset], variant, seed, run_dir, args))
                scores = backtest(run.module, run.datamodule, scorer=lambda m, d: score(m, d, 100))
                split = run.datamodule.split
                record = {
                    "dataset": dataset,
                    "variant": variant,
                    "seed": seed,
                    **{k: v for k, v in scores.items() if k in SCORES},
                    "test_windows": len(every_test_start(run.datamodule)),
                    "horizon": run.datamodule.prediction_length,
                    "best_epoch": run.fit["best_epoch"],
                    "epochs": run.fit["epochs"],
                    "val_windows": len(split.val_starts),
                    "fit_s": run.fit["fit_seconds"],
                }
                print(json.dumps(record), flush=True)
                JsonLines(args.jsonl).append(record)


def table(args) -> None:
    records = [r for path in args.files for r in JsonLines(path).read()]
    print(
        "| dataset | variant | seeds | CRPS (ProbTS) | NMAE | Cov90 | sigma/abs err | best epoch "
        "| val windows | test windows |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for (dataset, variant), rows in group_records(records, ("dataset", "variant")).items():

        def ms(key, digits=3, rows=rows):
            return format_mean_std((r[key] for r in rows), digits)

        print(
            f"| {dataset} | {variant} | {len(rows)} | {ms('crps_quantile')} | {ms('nmae')} | "
            f"{ms('coverage_90', 2)} | {ms('sigma_over_abs_err', 2)} | "
            f"{'/'.join(str(r['best_epoch']) for r in rows)} | {rows[0]['val_windows']} | "
            f"{rows[0]['test_windows']} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    r.add_argument("--out", type=Path, default=REPO / "runs" / "voldy_small")
    r.add_argument("--datasets", nargs="+", default=["exchange_weekly", "level_shift"])
    r.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    r.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    r.add_argument("--epochs", type=int, default=50)
    r.add_argument("--jsonl", type=Path, default=REPO / "runs" / "voldy_small.jsonl")
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    {"run": run, "table": table}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
