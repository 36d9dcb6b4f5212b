"""Reproduce the GLS paper's Table 1 / 5 rows under the paper's own protocol (issue 13).

For each model x likelihood x training seed: ``probforecast fit`` with the model's config
(``configs/<model>/<dataset>[_independent].yaml``: the official hyperparameters, ``reg_w`` 2.5,
lengthscales {1, 2, 3}) stacked with ``configs/protocols/gls_paper.yaml`` (the paper's split:
consecutive test windows, as many validation windows before them; early stopping on the
validation NLL with patience 10, at most 10,000 steps; the best-``val/loss`` checkpoint). The
selected checkpoint is then tested ``--repeats`` times with 100 samples per window and a new
sampling seed each time (the paper: 10 sampling passes of one trained model), and scored as the
paper aggregates: CRPS, CRPS-sum and energy score per window, averaged over windows
(``probforecast.metrics.functional.window_mean_scores``).

The table has one row per (dataset, model, likelihood): mean ± std over training seeds (each
seed's value is the mean over its sampling repeats), the paper's mean ± std (over sampling
passes only), and "in band": ``|ours - paper| <= 2 sqrt(std_seeds^2 + std_paper^2)``.

    python scripts/reproduce_gls.py --dataset exchange_rate_nips --model gpvar --seeds 1 2 3
    python scripts/reproduce_gls.py --dataset m4_hourly --model gpvar transformer --likelihood both --seeds 1 2

Each run is one worker process (``--jobs`` at a time, one torch thread each) writing
``<runs-dir>/<dataset>/<model>_<likelihood>_seed<k>/result.json``; finished runs are reused,
so an interrupted reproduction resumes; ``--rescore`` re-tests finished runs' best checkpoints
under the current configs (a sampling-only change such as ``sample_group_size``, the official
test loader's groups of B series on m4_hourly) and keeps their fit figures. ``--out`` (default ``docs/gls_accuracy.md``) gets the
table between the markers of its dataset; ``--set KEY=VALUE`` passes CLI overrides (ablations)
and ``--tag`` names such a variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from probforecast.evaluate.summary import format_mean_std, in_band

REPO = Path(__file__).resolve().parents[1]
METRICS = ("crps", "crps_sum", "energy_score")
LIKELIHOODS = ("independent", "gls")
# spec-gls §6, Tables 5 (CRPS) and 1 (CRPS-sum): (mean, std over 10 sampling passes)
PAPER = {
    ("gpvar", "exchange_rate_nips", "independent"): {
        "crps": (0.0171, 0.0004),
        "crps_sum": (0.0068, 0.0004),
    },
    ("gpvar", "exchange_rate_nips", "gls"): {
        "crps": (0.0141, 0.0003),
        "crps_sum": (0.0117, 0.0004),
    },
    ("transformer", "exchange_rate_nips", "independent"): {
        "crps": (0.0092, 0.0002),
        "crps_sum": (0.0055, 0.0002),
    },
    ("transformer", "exchange_rate_nips", "gls"): {
        "crps": (0.0081, 0.0001),
        "crps_sum": (0.0042, 0.0002),
    },
    ("gpvar", "m4_hourly", "independent"): {"crps": (0.1174, 0.0002), "crps_sum": (0.0613, 0.0004)},
    ("gpvar", "m4_hourly", "gls"): {"crps": (0.1237, 0.0002), "crps_sum": (0.0358, 0.0002)},
    ("transformer", "m4_hourly", "independent"): {
        "crps": (0.1306, 0.0002),
        "crps_sum": (0.0651, 0.0004),
    },
    ("transformer", "m4_hourly", "gls"): {"crps": (0.1189, 0.0002), "crps_sum": (0.0616, 0.0003)},
}


FIT_FIELDS = ("fit_seconds", "steps", "epochs", "best_val_loss")
"""What a ``--rescore`` keeps from a run's previous ``result.json``."""


def config_args(model: str, dataset: str, likelihood: str) -> list[str]:
    suffix = "" if likelihood == "gls" else "_independent"
    return [
        "--config",
        str(REPO / "configs" / model / f"{dataset}{suffix}.yaml"),
        "--config",
        str(REPO / "configs" / "protocols" / "gls_paper.yaml"),
    ]


def run_dir(args, model: str, likelihood: str, seed: int) -> Path:
    tag = f"_{args.tag}" if args.tag else ""
    return Path(args.runs_dir) / args.dataset / f"{model}_{likelihood}{tag}_seed{seed}"


def archived_result(args, model: str, likelihood: str, seed: int) -> Path:
    """The committed copy of a run's ``result.json``: ``<archive>/<dataset>/<run name>.json``,
    so that a table can be rebuilt on a clone that never ran it."""
    return Path(args.archive) / args.dataset / f"{run_dir(args, model, likelihood, seed).name}.json"


def find_result(args, model: str, likelihood: str, seed: int) -> Path | None:
    """The run's ``result.json`` in the runs directory, else its archived copy, else None."""
    for path in (
        run_dir(args, model, likelihood, seed) / "result.json",
        archived_result(args, model, likelihood, seed),
    ):
        if path.exists():
            return path
    return None


def previous_fit(out: Path) -> dict[str, object] | None:
    """The fit figures of a run's earlier ``result.json`` (kept by ``--rescore``), if any."""
    result = out / "result.json"
    if not result.exists():
        return None
    return {k: json.loads(result.read_text())[k] for k in FIT_FIELDS}


# ---------------------------------------------------------------------- one run (worker process)
def worker(args) -> None:
    import lightning.pytorch as pl
    import torch

    from probforecast.evaluate import (
        QUIET_RUN_ARGS,
        backtest,
        fit_run,
        reload_run,
        window_mean_scorer,
    )

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the CLI does
    (model,), (likelihood,), (seed,) = args.model, [args.likelihood], args.seeds
    out = run_dir(args, model, likelihood, seed)
    cli_args = [
        *config_args(model, args.dataset, likelihood),
        "--seed_everything",
        str(seed),
        "--data.seed",
        str(seed),
        "--data.root",
        args.data_root,
        "--trainer.default_root_dir",
        str(out),
        "--trainer.max_steps",
        str(args.max_steps),
        *QUIET_RUN_ARGS,
        *[f"--{kv}" for kv in args.set],
    ]
    # the current config's forecaster (not the checkpoint's spec): --rescore applies
    # sampling-only changes such as sample_group_size to the trained weights
    if args.rescore:  # fit figures from the earlier result, else from the checkpoints
        run = reload_run(out, cli_args, use_config_forecaster=True)
    else:
        run = fit_run(cli_args, use_config_forecaster=True)
    fit = (args.rescore and previous_fit(out)) or {
        "fit_seconds": run.fit["fit_seconds"],
        "steps": run.fit["steps"],
        "epochs": run.fit["epochs"],
        "best_val_loss": run.fit["best_score"],
    }
    pl.seed_everything(seed, verbose=False)
    scores = backtest(
        run.module,
        run.datamodule,
        repeats=args.repeats,
        scorer=window_mean_scorer(args.num_samples),
    )
    split = run.datamodule.split
    result = {
        "model": model,
        "dataset": args.dataset,
        "likelihood": likelihood,
        "seed": seed,
        "tag": args.tag,
        "overrides": args.set,
        **fit,
        "test_seconds": scores["test_seconds"],
        "best_epoch": run.fit["best_epoch"] - 1,  # 0-based, as the archived results
        "sample_group_size": getattr(run.module.forecaster, "sample_group_size", None),
        "test_windows": list(split.test_starts),
        "val_windows": list(split.val_starts),
        "train_end": split.train_end,
        "repeats": args.repeats,
        "num_samples": args.num_samples,
        **{m: scores[m] for m in METRICS},
        **{f"{m}_repeat_std": scores[f"{m}_repeat_std"] for m in METRICS},
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    archive = archived_result(args, model, likelihood, seed)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text(json.dumps(result, indent=2) + "\n")


# ---------------------------------------------------------------------- driver
def launch(args, jobs: list[tuple[str, str, int]]) -> None:
    """Run the missing runs, ``--jobs`` worker processes at a time."""
    done = [j for j in jobs if find_result(args, *j) is not None]
    fitted = [j for j in jobs if (run_dir(args, *j) / "checkpoints" / "best.json").exists()]
    pending = fitted if args.rescore else [j for j in jobs if j not in done]
    running: list[tuple[subprocess.Popen, tuple]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    while pending or running:
        while pending and len(running) < args.jobs:
            model, likelihood, seed = job = pending.pop(0)
            log = run_dir(args, *job)
            log.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                "--dataset",
                args.dataset,
                "--model",
                model,
                "--likelihood",
                likelihood,
                "--seeds",
                str(seed),
                *_shared_flags(args),
            ]
            print(f"[reproduce_gls] start {model} {likelihood} seed {seed}", flush=True)
            with open(log / "worker.log", "w") as fh:
                running.append((subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env), job))
        time.sleep(2)
        for proc, job in list(running):
            if proc.poll() is None:
                continue
            running.remove((proc, job))
            status = (
                "done" if proc.returncode == 0 else f"FAILED (see {run_dir(args, *job)}/worker.log)"
            )
            print(f"[reproduce_gls] {status}: {' '.join(map(str, job))}", flush=True)
            if args.out:
                write_table(args, jobs)


def _shared_flags(args) -> list[str]:
    flags = [
        "--data-root",
        args.data_root,
        "--runs-dir",
        args.runs_dir,
        "--archive",
        args.archive,
        "--max-steps",
        str(args.max_steps),
        "--repeats",
        str(args.repeats),
        "--num-samples",
        str(args.num_samples),
    ]
    if args.tag:
        flags += ["--tag", args.tag]
    if args.rescore:
        flags.append("--rescore")
    for kv in args.set:
        flags += ["--set", kv]
    return flags


def _band(ours: list[float], paper: tuple[float, float]) -> str:
    return "yes" if in_band(ours, paper) else "no"


def table(args, jobs: list[tuple[str, str, int]]) -> str:
    rows = [
        "| model | likelihood | seeds | CRPS | paper CRPS | in band | CRPS-sum | paper CRPS-sum "
        "| in band | energy score | CRPS per seed | passes | sampling groups | steps (best epoch) "
        "| fit s | test s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(m for m, _, _ in jobs):
        for likelihood in dict.fromkeys(lk for _, lk, _ in jobs):
            results = [
                json.loads(path.read_text())
                for m, lk, seed in jobs
                if m == model
                and lk == likelihood
                and (path := find_result(args, m, lk, seed)) is not None
            ]
            if not results:
                continue
            paper = PAPER.get((model, args.dataset, likelihood), {})
            cells = []
            for metric in ("crps", "crps_sum"):
                ours = [r[metric] for r in results]
                ref = paper.get(metric)
                cells += [
                    format_mean_std(ours),
                    f"{ref[0]:.4f} ± {ref[1]:.4f}" if ref else "–",
                    _band(ours, ref) if ref else "–",
                ]
            steps = ", ".join(f"{r['steps']} ({r['best_epoch']})" for r in results)
            fit = statistics.fmean(r["fit_seconds"] for r in results)
            test = statistics.fmean(r["test_seconds"] for r in results)
            passes = "/".join(sorted({str(r["repeats"]) for r in results}))
            groups = "/".join(sorted({str(r.get("sample_group_size") or "all") for r in results}))
            per_seed = ", ".join(f"{r['crps']:.4f}" for r in results)
            name = "w/ (GLS)" if likelihood == "gls" else "w/o"
            seeds = " ".join(str(r["seed"]) for r in results)
            rows.append(
                f"| {model} | {name} | {seeds} | {' | '.join(cells)} | "
                f"{format_mean_std([r['energy_score'] for r in results])} | {per_seed} | {passes} | {groups} | {steps} "
                f"| {fit:.0f} "
                f"| {test:.0f} |"
            )
    return "\n".join(rows)


def write_table(args, jobs) -> None:
    tag = f" ({args.tag})" if args.tag else ""
    marker = f"reproduce_gls:{args.dataset}{':' + args.tag if args.tag else ''}"
    first = find_result(args, *jobs[0])
    protocol = ""
    if first is not None:
        r = json.loads(first.read_text())
        protocol = (
            f"Split: training steps < {r['train_end']}, validation starts {r['val_windows'][0]}.."
            f"{r['val_windows'][-1]}, test starts {r['test_windows'][0]}..{r['test_windows'][-1]} "
            f"({len(r['test_windows'])} windows); {r['num_samples']} samples per window and "
            "sampling pass (passes per trained model: the passes column)."
        )
    command = " ".join(
        [
            "python scripts/reproduce_gls.py",
            "--dataset",
            args.dataset,
            "--model",
            *args.model,
            "--likelihood",
            args.likelihood_arg,
            "--seeds",
            *map(str, args.seeds),
            "--max-steps",
            str(args.max_steps),
        ]
        + ([] if args.table_only else ["--repeats", str(args.repeats)])
        + (["--tag", args.tag] if args.tag else [])
        + [f"--set {kv}" for kv in args.set]
    )
    block = (
        f"<!-- {marker} -->\n### {args.dataset}{tag}\n\n```\n{command}\n```\n\n{protocol}\n\n"
        f"{table(args, jobs)}\n<!-- /{marker} -->"
    )
    path = Path(args.out)
    text = path.read_text() if path.exists() else "# GLS accuracy\n"
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=["exchange_rate_nips", "m4_hourly"])
    parser.add_argument("--model", nargs="+", default=["gpvar"], choices=["gpvar", "transformer"])
    parser.add_argument("--likelihood", default="both", choices=[*LIKELIHOODS, "both"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--max-steps", type=int, default=10_000, help="the paper's budget")
    parser.add_argument("--repeats", type=int, default=10, help="sampling passes (paper: 10)")
    parser.add_argument("--num-samples", type=int, default=100, help="per window (paper: 100)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "reproduce_gls"))
    parser.add_argument("--out", default=str(REPO / "docs" / "gls_accuracy.md"))
    parser.add_argument(
        "--archive",
        default=str(REPO / "docs" / "results" / "gls_issue13"),
        help="committed copies of every run's result.json (tables read them when runs/ lacks one)",
    )
    parser.add_argument("--tag", default="", help="name of a variant (with --set)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="CLI override for every run, e.g. model.forecaster.init_args.reg_w=0",
    )
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="re-test the finished runs' best checkpoints under the current configs (after a "
        "sampling-only change such as sample_group_size); keeps their fit figures",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.likelihood_arg = args.likelihood
    likelihoods = LIKELIHOODS if args.likelihood == "both" else (args.likelihood,)
    jobs = [(m, lk, s) for m in args.model for lk in likelihoods for s in args.seeds]
    if not args.table_only:
        launch(args, jobs)
    if args.out:
        write_table(args, jobs)
    print(table(args, jobs))


if __name__ == "__main__":
    main()
