"""Issue 15 closing measurement: CW vs Raw on the paper's base models TimeDiff and FlowTS.

``run``: for each (seed, dataset) in the order seed 1 (etth1, etth2), seed 2 (etth1, etth2), ...
train the JMCE with ``configs/jmce/<dataset>.yaml`` + ``configs/jmce/trainer/cpu_scaled.yaml``
(once per dataset and seed: the official scripts train the JMCE inside their seed loop,
``set_seed(514 + seed_idx)``; here CW-TimeDiff and CW-FlowTS share that seed's JMCE, since our
configs give both the same JMCE settings), then fit CW-TimeDiff, Raw-TimeDiff, CW-FlowTS and
Raw-FlowTS with their configs + CPU overlays (``configs/cw_diff/timediff_<dataset>[_raw].yaml``
+ ``configs/cw_diff/trainer/timediff_cpu_scaled.yaml``, ``configs/cw_flow/flowts_...``), reload
the checkpoint with the lowest ``val/loss`` and test it on the 8 non-overlapping test segments
(metrics on the standardised scale). One JSON line per run (the JMCE too, as a Gaussian
forecaster) goes to ``--jsonl``; a run whose line is there (same dataset, base, prior, seed and
budget) is skipped, so the command resumes. ``--stop-at HH:MM`` starts no run after that time.

``table``: mean ± std over seeds per (dataset, base, prior) beside the paper's Tables 2 / 3
(CRPS, QICE x100, ProbCorr) and 7 (ProbMSE), with the budget line.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_cwgen_base.py run \
        --data-root ../shared/data --seeds 1 2 3 --jsonl runs/bench_cwgen_base/results.jsonl
    python scripts/bench_cwgen_base.py table runs/bench_cwgen_base/results.jsonl

Metrics: CRPS = ``crps_unnormalized`` (per entry, not divided by sum |y|), QICE (x100),
ProbCorr, ProbMSE as the paper defines it (``prob_mse``: per-sample squared error averaged over
the samples), and, beside it, ``mse`` (MSE of the sample mean: the official code's ProbMSE).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch

from probforecast.cli import ProbForecastCLI
from probforecast.evaluate import JsonLines, backtest, fit_run, format_mean_std

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("etth1", "etth2")
BASES = ("timediff", "flowts")
PRIORS = ("cw", "raw")
METRICS = ["crps_unnormalized", "qice", "prob_corr", "prob_mse", "prob_mae", "mse", "mae"]
TABLE_KEYS = ("crps_unnormalized", "qice", "prob_corr", "prob_mse")

#: The paper's mean (std) over 10 seeds: Table 2 (ETTh1) / Table 3 (ETTh2) for CRPS, QICE x100,
#: ProbCorr, and Table 7 for ProbMSE. Key: (dataset, base, prior).
PAPER = {
    ("etth1", "timediff", "raw"): ((0.787, 0.051), (9.038, 0.946), (0.320, 0.012), (1.366, 0.080)),
    ("etth1", "timediff", "cw"): ((0.505, 0.040), (8.821, 1.916), (0.243, 0.027), (0.756, 0.135)),
    ("etth1", "flowts", "raw"): ((0.724, 0.135), (8.820, 2.631), (0.354, 0.060), (1.006, 0.153)),
    ("etth1", "flowts", "cw"): ((0.488, 0.020), (8.817, 0.460), (0.254, 0.021), (0.698, 0.059)),
    ("etth2", "timediff", "raw"): ((2.543, 0.910), (12.769, 1.726), (0.753, 0.252), (0.793, 0.983)),
    ("etth2", "timediff", "cw"): ((0.395, 0.031), (6.584, 1.246), (0.327, 0.020), (0.496, 0.064)),
    ("etth2", "flowts", "raw"): ((1.534, 0.252), (12.147, 1.356), (0.650, 0.044), (2.958, 0.774)),
    ("etth2", "flowts", "cw"): ((0.824, 0.138), (11.744, 1.094), (0.498, 0.050), (1.522, 0.429)),
}
NAMES = {"timediff": "TimeDiff", "flowts": "FlowTS", "jmce": "JMCE alone"}


# ---------------------------------------------------------------------------------- configs
def config_files(dataset: str, base: str, prior: str) -> list[str]:
    """The YAML stack of one run: the paper-protocol config, then the CPU overlays."""
    if base == "jmce":
        files = [f"configs/jmce/{dataset}.yaml", "configs/jmce/trainer/cpu_scaled.yaml"]
    elif base in ("timediff", "flowts"):
        family = "cw_diff" if base == "timediff" else "cw_flow"
        suffix = "_raw" if prior == "raw" else ""
        files = [
            f"configs/{family}/{base}_{dataset}{suffix}.yaml",
            f"configs/{family}/trainer/{base}_cpu_scaled.yaml",
        ]
        if prior != "raw":  # the JMCE prior at the CPU-scaled JMCE's sizes (Raw has none)
            files.append("configs/jmce/trainer/cw_prior_cpu_scaled.yaml")
    else:
        raise ValueError(f"unknown base {base!r}")
    return [str(REPO / f) for f in files]


def run_dir(args, dataset: str, seed: int, base: str, prior: str) -> Path:
    name = "jmce" if base == "jmce" else f"{base}_{prior}"
    return Path(args.run_root) / f"{dataset}_s{seed}" / name


def jmce_ckpt(args, dataset: str, seed: int) -> Path:
    root = Path(args.jmce_root or args.run_root)
    return root / f"{dataset}_s{seed}" / "jmce" / "checkpoints" / "best.ckpt"


def cli_args(args, dataset: str, seed: int, base: str, prior: str) -> list[str]:
    argv = []
    for f in config_files(dataset, base, prior):
        argv += ["--config", f]
    argv += [
        f"--seed_everything={seed}",
        f"--data.root={args.data_root}",
        f"--data.seed={seed}",
        f"--model.sample_seed={seed}",
        f"--model.metrics=[{','.join(METRICS)}]",
        f"--trainer.default_root_dir={run_dir(args, dataset, seed, base, prior)}",
        "--trainer.accelerator=cpu",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--forecast_plot.every_n_val_epochs=0",
        "--forecast_plot.num_samples=2",
        "--model_views.every_n_val_epochs=0",
        "--series_metrics.enabled=false",
    ]
    if base != "jmce" and prior == "cw":
        argv.append(
            f"--model.forecaster.init_args.jmce.checkpoint={jmce_ckpt(args, dataset, seed)}"
        )
    if base != "jmce":  # the generators' overrides, e.g. trainer.max_epochs=50
        argv += [f"--{item}" for item in args.set or []]
    if args.smoke:  # end-to-end check of the script: 1 epoch of 2 batches, few samples
        argv += [
            "--trainer.max_epochs=1",
            "--data.num_batches_per_epoch=2",
            "--model.num_samples=4",
            "--model.val_num_samples=2",
        ]
    return argv


def budget_of(cli: ProbForecastCLI, base: str) -> str:
    """The run's budget, read from its resolved config (so smoke and real lines never mix)."""
    cfg = cli.config
    init = cfg.model.forecaster.init_args
    text = (
        f"{cfg.trainer.max_epochs} epochs x {cfg.data.num_batches_per_epoch} batches of "
        f"{cfg.data.batch_size}, best val/loss; {cfg.model.num_samples} test samples "
        f"({cfg.model.val_num_samples} at validation)"
    )
    if base == "jmce":
        return f"JMCE d_model {init.d_model}, {init.e_layers}+{init.d_layers} layers; " + text
    net = dict(init.network)["init_args"]  # a plain dict (the spec survives the CLI as one)
    if base == "timediff":
        size = f"TimeDiffNet {net['channels']} ch, {net['layers_inp']}/{net['layers_I']}/{net['layers_II']} layers"
        steps = f"T {init.diffusion_steps}, DDIM {init.sampling_steps}"
    else:
        size = f"FlowTSNet d_model {net['d_model']}, {net['e_layers']}+{net['d_layers']} layers"
        steps = f"{init.sampling_steps} flow steps (i/N)^{init.time_exponent}"
    return f"{size}, {steps}; " + text


# ---------------------------------------------------------------------------------- run
def load_lines(path: Path) -> list[dict]:
    return JsonLines(path).read()


def done(lines: list[dict], dataset: str, base: str, prior: str, seed: int, smoke: bool) -> bool:
    return any(
        r["dataset"] == dataset
        and r["base"] == base
        and r["prior"] == prior
        and r["seed"] == seed
        and r.get("smoke", False) == smoke
        for r in lines
    )


def past_deadline(args) -> bool:
    if not args.stop_at:
        return False
    hour, minute = (int(x) for x in args.stop_at.split(":"))
    now = dt.datetime.now()
    return (now.hour, now.minute) >= (hour, minute)


def one_run(args, dataset: str, seed: int, base: str, prior: str) -> dict:
    """Fit with the CPU overlay, reload the lowest-val/loss checkpoint, test; one record."""
    directory = run_dir(args, dataset, seed, base, prior)
    if directory.exists():  # an interrupted run: start it afresh
        shutil.rmtree(directory)
    run = fit_run(cli_args(args, dataset, seed, base, prior))
    scores = backtest(run.module, run.datamodule)
    metrics = {k: v for k, v in scores.items() if k in METRICS}
    metrics["qice"] *= 100  # the paper's tables report QICE x 100
    fit_s, test_s = run.fit["fit_seconds"], scores["test_seconds"]
    return {
        "dataset": dataset,
        "base": base,
        "prior": prior,
        "seed": seed,
        "metrics": metrics,
        "fit_s": round(fit_s, 1),
        "test_s": round(test_s, 1),
        "epochs": run.fit["epochs"],
        "best_epoch": run.fit["best_epoch"],  # 1-based
        "best_val_loss": run.fit["best_score"],
        "budget": budget_of(run.cli, base),
        "configs": [str(Path(f).relative_to(REPO)) for f in config_files(dataset, base, prior)],
        "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0],
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "smoke": bool(args.smoke),
        "overrides": list(args.set or []),
    }


def run(args) -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("probforecast").setLevel(logging.WARNING)
    jsonl = Path(args.jsonl)
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for dataset in args.datasets:
            # a JMCE from another --jmce-root is reused, never retrained there
            reuse = args.jmce_root is not None and jmce_ckpt(args, dataset, seed).is_file()
            plan = [] if reuse else [("jmce", "-")]
            plan += [(b, p) for b in args.bases for p in PRIORS]
            for base, prior in plan:
                lines = load_lines(jsonl)
                if done(lines, dataset, base, prior, seed, args.smoke):
                    continue
                if past_deadline(args):
                    print(f"stop: past {args.stop_at}, no new run started", flush=True)
                    return
                print(f"[{dt.datetime.now():%H:%M:%S}] {dataset} seed {seed}: {base} {prior}",
                      flush=True)  # fmt: skip
                record = one_run(args, dataset, seed, base, prior)
                JsonLines(jsonl).append(record)
                m = record["metrics"]
                print(f"  fit {record['fit_s']:.0f}s test {record['test_s']:.0f}s best epoch "
                      f"{record['best_epoch']}: CRPS {m['crps_unnormalized']:.3f} QICE "
                      f"{m['qice']:.2f} ProbCorr {m['prob_corr']:.3f} ProbMSE "
                      f"{m['prob_mse']:.3f}", flush=True)  # fmt: skip


# ---------------------------------------------------------------------------------- table
def _ms(values: list[float], digits: int = 3) -> str:
    return format_mean_std(values, digits)


def format_table(records: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["base"], r["prior"]), []).append(r)
    budgets = {r["base"]: r["budget"] for r in records}
    out = [
        "| dataset | base | prior | seeds | CRPS | paper | QICE ×100 | paper | ProbCorr | paper "
        "| ProbMSE (paper def.) | paper | MSE of sample mean (code's ProbMSE) | fit s per seed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {b: i for i, b in enumerate(("timediff", "flowts", "jmce"))}
    for key in sorted(groups, key=lambda k: (k[0], order.get(k[1], 9), k[2])):
        rs = sorted(groups[key], key=lambda r: r["seed"])
        paper = PAPER.get(key)
        cells = []
        for i, metric in enumerate(TABLE_KEYS):
            digits = 2 if metric == "qice" else 3
            cells.append(_ms([r["metrics"][metric] for r in rs], digits))
            cells.append(f"{paper[i][0]:.3f} ({paper[i][1]:.3f})" if paper else "—")
        fit = "/".join(f"{r['fit_s']:.0f}" for r in rs)
        prior = "—" if key[1] == "jmce" else ("CW" if key[2] == "cw" else "Raw")
        seeds = ",".join(str(r["seed"]) for r in rs)
        mse = _ms([r["metrics"]["mse"] for r in rs])
        out.append(
            f"| {key[0]} | {NAMES[key[1]]} | {prior} | {seeds} | " + " | ".join(cells)
            + f" | {mse} | {fit} |"
        )  # fmt: skip
    out += ["", *win_lines(groups), ""]
    for base in ("jmce", "timediff", "flowts"):
        if base in budgets:
            out.append(f"- Budget, {NAMES[base]}: {budgets[base]}.")
    return "\n".join(out)


def win_lines(groups: dict[tuple, list[dict]]) -> list[str]:
    """Per dataset and base: in how many seeds CW is lower than Raw, per metric (all four
    are lower-is-better)."""
    lines = []
    for dataset in DATASETS:
        for base in BASES:
            cw = {r["seed"]: r for r in groups.get((dataset, base, "cw"), [])}
            raw = {r["seed"]: r for r in groups.get((dataset, base, "raw"), [])}
            seeds = sorted(cw.keys() & raw.keys())
            if not seeds:
                continue
            wins = [
                f"{label} {sum(cw[s]['metrics'][k] < raw[s]['metrics'][k] for s in seeds)}"
                for k, label in zip(
                    TABLE_KEYS, ("CRPS", "QICE", "ProbCorr", "ProbMSE"), strict=True
                )
            ]
            lines.append(
                f"- {dataset} {NAMES[base]}: CW < Raw in {', '.join(wins)} of {len(seeds)} "
                f"paired seeds ({','.join(map(str, seeds))})."
            )
    return lines


def table(args) -> None:
    records = [r for f in args.files for r in load_lines(Path(f)) if not r.get("smoke")]
    print(format_table(records))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    r.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    r.add_argument("--bases", nargs="+", default=list(BASES), choices=BASES)
    r.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    r.add_argument("--run-root", default="runs/bench_cwgen_base")
    r.add_argument("--jsonl", default="runs/bench_cwgen_base/results.jsonl")
    r.add_argument("--stop-at", default=None, help="HH:MM (local time): start no run after it")
    r.add_argument(
        "--set", nargs="*", help="CLI overrides of the generator runs, e.g. trainer.max_epochs=50"
    )
    r.add_argument(
        "--jmce-root",
        default=None,
        help="take each seed's JMCE from this run root when it has one (default: --run-root)",
    )
    r.add_argument("--smoke", action="store_true", help="1 epoch of 2 batches, 4 test samples")
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+", help="JSON-lines files written by run")
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    os.environ.setdefault("WANDB_MODE", "offline")
    {"run": run, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
