"""``python -m probforecast.evaluate``: fit a config over seeds, test the best checkpoints,
append one JSON line per seed and print mean ± std over the seeds.

    python -m probforecast.evaluate --config configs/gpvar/exchange_rate_nips.yaml \\
        --seeds 1 2 3 --repeats 2 --jsonl runs/evaluate/gpvar.jsonl \\
        --set data.root=../shared/data --set trainer.max_steps=500

Each seed is ``probforecast fit`` with ``--seed_everything`` and ``--data.seed`` set to it, in
``<root-dir>/<name>/seed<k>``; its lowest-monitored checkpoint is reloaded and tested
``--repeats`` times (sampling passes) with the module's metrics. Seeds whose record (same
``name`` and ``seed``) is already in the file are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probforecast.evaluate.backtest import backtest
from probforecast.evaluate.fitting import QUIET_RUN_ARGS, fit_run
from probforecast.evaluate.records import JsonLines
from probforecast.evaluate.summary import format_mean_std


def seed_args(configs: Sequence[str], overrides: Sequence[str], seed: int, root: Path) -> list[str]:
    """``probforecast fit`` arguments of one seed (configs first: they set their own seed)."""
    args = [item for config in configs for item in ("--config", config)]
    args += [
        "--seed_everything",
        str(seed),
        "--data.seed",
        str(seed),
        "--trainer.default_root_dir",
        str(root),
        *QUIET_RUN_ARGS,
    ]
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set takes KEY=VALUE (a LightningCLI key); got {item!r}")
        args += [f"--{key}", value]
    return args


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Fit, reload the best checkpoint, backtest: the JSON record of one seed."""
    root = Path(args.root_dir) / args.name / f"seed{seed}"
    run = fit_run(seed_args(args.config, args.set, seed, root))
    scores = backtest(run.module, run.datamodule, repeats=args.repeats)
    return {
        "name": args.name,
        "seed": seed,
        "configs": list(args.config),
        "overrides": list(args.set),
        "best_checkpoint": run.best_path,
        **run.fit,
        **scores,
        "test_windows": len(run.datamodule.split.test_starts),
        "load_average": os.getloadavg()[0],
    }


def summary_lines(records: list[dict[str, Any]], metrics: Sequence[str] | None) -> list[str]:
    """Markdown table: one row per metric, mean ± std over the records' seeds."""
    if not records:
        return ["no record"]
    names = metrics or sorted(
        k for k, v in records[0].items()
        if isinstance(v, float) and not k.endswith("_repeat_std") and k not in _NOT_SCORES
    )  # fmt: skip
    seeds = " ".join(str(r["seed"]) for r in records)
    lines = [f"| metric | mean ± std over seeds {seeds} |", "|---|---|"]
    lines += [f"| {m} | {format_mean_std(r[m] for r in records)} |" for m in names]
    return lines


_NOT_SCORES = {"fit_seconds", "test_seconds", "best_score", "load_average"}


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python -m probforecast.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", action="append", required=True, help="config file (repeat)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=1, help="sampling passes per seed")
    parser.add_argument("--jsonl", required=True, help="append one record per seed here")
    parser.add_argument("--name", default=None, help="record name (default: the config stems)")
    parser.add_argument("--root-dir", default="runs/evaluate", help="runs go to ROOT/NAME/seedK")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="CLI override (repeat)"
    )
    parser.add_argument("--metrics", nargs="+", default=None, help="metrics in the summary")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}")
    args.name = args.name or "+".join(Path(c).stem for c in args.config)
    out = JsonLines(args.jsonl)
    for seed in args.seeds:
        if out.has(name=args.name, seed=seed):
            print(f"[evaluate] {args.name} seed {seed}: recorded, skipped", flush=True)
            continue
        out.append(run_seed(args, seed))
        print(f"[evaluate] {args.name} seed {seed}: done", flush=True)
    records = [r for r in out.read() if r.get("name") == args.name and r["seed"] in args.seeds]
    print("\n".join(summary_lines(records, args.metrics)))
    return records


if __name__ == "__main__":
    main()
