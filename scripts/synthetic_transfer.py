"""DynLMC's claim, tested: does pretraining on dynamic-correlation data transfer better zero-shot?

    OMP_NUM_THREADS=1 python scripts/synthetic_transfer.py --data-root ../shared/data \
        --seeds 1 2 3 --jobs 2 --out docs/synthetic.md

The same ``ZeroShotForecaster`` (a channel-mixing patch Transformer with instance
normalisation: its weights fit any number of series and any frequency) is pretrained with the
same budget on each synthetic corpus (rows), then evaluated, without any further training, on
the test splits of real datasets it never saw (columns). Rows:

- ``kernelsynth``, ``lmc``, ``dynlmc_drift``, ``dynlmc_lag``, ``dynlmc_regime``,
  ``dynlmc_combined``: one corpus each (``data.train_source`` in ``weighted`` mode, weight 1);
- ``progressive``: KernelSynth + LMC + DynLMC-combined interleaved by the paper's Algorithm 3;
- ``bo_weighted``: DynLMC drift / lag / regime with the mixture ``gamma*`` of the Bayesian
  optimisation recorded in ``docs/synthetic.md`` section 5 (chosen on the *validation* split
  of etth1 with a GaussianRNN, so etth1 is not strictly unseen for this row);
- ``in_domain``: the same model and budget trained from scratch on each dataset's own training
  split; ``fine_tuned`` (the ceiling): the ``progressive`` pretrained weights of the same seed,
  then the same budget again on the dataset's training split; ``seasonal_naive`` (floor): no
  training.

Every corpus is generated with as many channels as ``--host`` has series (the synthetic
windows are scaled per sample and channel). Training: ``--max-steps`` Adam steps of
``--batch-size`` windows (context ``P = 96``, horizon ``Q = 24``), no validation, the final
weights are evaluated (nothing is selected on any real split). Evaluation: the first
``--max-test-windows`` test windows of each dataset's standard split (stride ``Q``, the same
windows for every row), 100 samples, ``sample_seed`` = the training seed; CRPS (unnormalised)
and MAE of the sample mean on the dataset's standardised scale (the paper reports MAE on
standardised data). Each result is a JSON line in ``<runs-dir>/results.jsonl`` (finished tasks
are skipped on a rerun) and copied to ``--archive``; the table is rebuilt from the archive.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from probforecast.utils.markdown_block import block_markers, replace_marked_block

REPO = Path(__file__).resolve().parents[1]
P, Q = 96, 24
DATASETS = ("etth1", "etth2", "ettm1", "weather", "exchange_ltsf")
SINGLE = ("kernelsynth", "lmc", "dynlmc_drift", "dynlmc_lag", "dynlmc_regime", "dynlmc_combined")
BO_GAMMA = {"dynlmc_drift": 0.093, "dynlmc_lag": 0.023, "dynlmc_regime": 0.884}
PER_DATASET = ("in_domain", "fine_tuned", "seasonal_naive")
ROWS = (*SINGLE, "progressive", "bo_weighted", *PER_DATASET)
FINE_TUNE_FROM = "progressive"
MODEL = {"patch_len": 16, "d_model": 32, "n_heads": 4, "num_layers": 2, "dim_feedforward": 64}
BLOCK = "synthetic_transfer"
START, END = block_markers(BLOCK)


def source_options(row: str, args):
    """The ``train_source`` of a pretraining row."""
    from probforecast.data.synthetic.mixing import SyntheticSourceOptions

    common = {"num_samples": args.corpus_samples, "length": args.corpus_length, "seed": 0}
    if row in SINGLE:
        return SyntheticSourceOptions(sources=(row,), mode="weighted", weights=(1.0,), **common)
    if row == "progressive":
        sources = ("kernelsynth", "lmc", "dynlmc_combined")
        return SyntheticSourceOptions(sources=sources, mode="progressive", **common)
    if row == "bo_weighted":
        return SyntheticSourceOptions(
            sources=tuple(BO_GAMMA), mode="weighted", weights=tuple(BO_GAMMA.values()), **common
        )
    raise ValueError(f"{row} is not a pretraining row")


def datamodule(dataset: str, args, seed: int, train_source=None):
    from probforecast.data import ForecastDataModule

    return ForecastDataModule(
        dataset,
        root=args.data_root,
        context_length=P,
        prediction_length=Q,
        test_stride=Q,
        max_test_windows=args.max_test_windows,
        batch_size=args.batch_size,
        eval_batch_size=50,
        num_batches_per_epoch=args.max_steps,
        seed=seed,
        train_source=train_source,
    )


def facts(dm) -> dict:
    """The data facts a forecaster is built with (what the CLI links from the data module)."""
    from probforecast.cli import LINKED_DATA_FACTS

    return {fact: getattr(dm, fact) for fact in LINKED_DATA_FACTS}


def quiet_trainer(**kwargs):
    import lightning.pytorch as pl

    return pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **kwargs,
    )


def train(dm, seed: int, args, init: dict | None = None) -> tuple[dict, float]:
    """Fit a ``ZeroShotForecaster`` (fresh, or starting from the weights ``init``) on ``dm``'s
    training windows; its final weights and the fit time."""
    from functools import partial

    import lightning.pytorch as pl
    import torch

    from probforecast.models import ZeroShotForecaster
    from probforecast.models.module import ForecastModule

    pl.seed_everything(seed, verbose=False)
    dm.setup("fit")
    forecaster = ZeroShotForecaster(**facts(dm), **MODEL)
    if init is not None:
        forecaster.load_state_dict(init)
    module = ForecastModule(
        forecaster, optimizer=partial(torch.optim.Adam, lr=args.lr), num_samples=2
    )
    start = time.perf_counter()
    quiet_trainer(max_steps=args.max_steps, max_epochs=-1, limit_val_batches=0).fit(module, dm)
    return module.forecaster.state_dict(), time.perf_counter() - start


def pretrained(row: str, seed: int, args) -> tuple[dict, float]:
    """The weights of pretraining row ``row`` (seed ``seed``), cached in
    ``<runs-dir>/states/`` so that ``fine_tuned`` reuses the pretraining run's weights."""
    import torch

    path = args.runs_dir / "states" / f"{row}_seed{seed}_steps{args.max_steps}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["state"], saved["fit_seconds"]
    host = datamodule(args.host, args, seed, train_source=source_options(row, args))
    state, fit_s = train(host, seed, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"state": state, "fit_seconds": fit_s}, tmp)
    tmp.replace(path)
    return state, fit_s


def evaluate(dataset: str, seed: int, args, state: dict | None) -> dict[str, float]:
    """Test CRPS and MAE (standardised scale) on ``dataset``: the zero-shot model with
    ``state``, or SeasonalNaive when ``state`` is None."""
    from probforecast.models import SeasonalNaive, ZeroShotForecaster
    from probforecast.models.module import ForecastModule

    dm = datamodule(dataset, args, seed)
    dm.setup("test")
    if state is None:
        forecaster = SeasonalNaive(**facts(dm))
    else:
        forecaster = ZeroShotForecaster(**facts(dm), **MODEL)
        forecaster.load_state_dict(state)
    module = ForecastModule(
        forecaster.eval(),
        num_samples=100,
        metrics=["crps_unnormalized", "mae"],
        metrics_on_scaled=True,
        sample_seed=seed,
    )
    (scores,) = quiet_trainer().test(module, datamodule=dm, verbose=False)
    return {
        "crps": scores["test/crps_unnormalized"],
        "mae": scores["test/mae"],
        "test_windows": len(dm.split.test_starts),
    }


def run_task(task: tuple[str, str, int], args) -> list[dict]:
    """One row x seed (a pretraining row: evaluated on every dataset; ``in_domain`` /
    ``seasonal_naive``: the dataset named in the task)."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    row, dataset, seed = task
    common = {"row": row, "seed": seed, "max_steps": args.max_steps, "batch_size": args.batch_size}
    if row == "seasonal_naive":
        return [
            {
                **common,
                "dataset": dataset,
                "fit_seconds": 0.0,
                **evaluate(dataset, seed, args, None),
            }
        ]
    if row in ("in_domain", "fine_tuned"):
        init = pretrained(FINE_TUNE_FROM, seed, args)[0] if row == "fine_tuned" else None
        state, fit_s = train(datamodule(dataset, args, seed), seed, args, init)
        return [
            {
                **common,
                "dataset": dataset,
                "fit_seconds": fit_s,
                **evaluate(dataset, seed, args, state),
            }
        ]
    state, fit_s = pretrained(row, seed, args)
    return [
        {**common, "dataset": ds, "fit_seconds": fit_s, **evaluate(ds, seed, args, state)}
        for ds in args.datasets
    ]


def tasks(args) -> list[tuple[str, str, int]]:
    out = []
    for seed in args.seeds:
        for row in args.rows:
            if row in PER_DATASET:
                if row == "seasonal_naive" and seed != args.seeds[0]:
                    continue  # deterministic forecast; its sampling noise is seeded anyway
                out += [(row, ds, seed) for ds in args.datasets]
            else:
                out.append((row, "*", seed))
    return out


def read_lines(path: Path) -> list[dict]:
    return (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    )


def done_keys(lines: list[dict], args) -> set[tuple[str, str, int]]:
    keys = set()
    for r in lines:
        if r["max_steps"] == args.max_steps:
            keys.add((r["row"], r["dataset"], r["seed"]))
            keys.add((r["row"], "*", r["seed"]))
    return keys


def table(lines: list[dict], args) -> str:
    lines = [r for r in lines if r["max_steps"] == args.max_steps]
    cell: dict[tuple[str, str], list[dict]] = {}
    for r in lines:
        cell.setdefault((r["row"], r["dataset"]), []).append(r)

    def fmt(rs: list[dict], key: str) -> str:
        values = [r[key] for r in rs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.fmean(values):.3f} ± {std:.3f}"

    head = "| corpus (rows) | " + " | ".join(args.datasets) + " | seeds | fit s |"
    out = [head, "|" + "---|" * (len(args.datasets) + 3)]
    for key in ("crps", "mae"):
        out.append(f"| **{key.upper()}** |" + " |" * (len(args.datasets) + 2))
        for row in args.rows:
            rs = [cell.get((row, ds), []) for ds in args.datasets]
            if not any(rs):
                continue
            seeds = sorted({r["seed"] for c in rs for r in c})
            fit = statistics.fmean(r["fit_seconds"] for c in rs for r in c)
            cells = " | ".join(fmt(c, key) if c else "–" for c in rs)
            out.append(f"| {row} | {cells} | {' '.join(map(str, seeds))} | {fit:.0f} |")
    return "\n".join(out) + "\n"


def verdict(lines: list[dict], args) -> str:
    """Per dataset: each DynLMC row's mean CRPS minus the better of LMC / KernelSynth, in units
    of the pooled seed std of the two rows."""
    lines = [r for r in lines if r["max_steps"] == args.max_steps]
    out = [
        "| DynLMC row | " + " | ".join(args.datasets) + " |",
        "|" + "---|" * (len(args.datasets) + 1),
    ]
    for row in [
        r for r in args.rows if r.startswith("dynlmc") or r in ("progressive", "bo_weighted")
    ]:
        cells = []
        for ds in args.datasets:
            ours = [r["crps"] for r in lines if r["row"] == row and r["dataset"] == ds]
            base = {
                b: [r["crps"] for r in lines if r["row"] == b and r["dataset"] == ds]
                for b in ("lmc", "kernelsynth")
            }
            base = {b: v for b, v in base.items() if v}
            if len(ours) < 2 or not base:
                cells.append("–")
                continue
            best = min(base, key=lambda b: statistics.fmean(base[b]))
            diff = statistics.fmean(ours) - statistics.fmean(base[best])
            spread = ((statistics.variance(ours) + statistics.variance(base[best])) / 2) ** 0.5
            cells.append(
                f"{diff:+.3f} ({diff / spread:+.1f} sd, vs {best})" if spread else f"{diff:+.3f}"
            )
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def render(lines: list[dict], args) -> str:
    load = os.getloadavg()
    command = (
        f"python scripts/synthetic_transfer.py --seeds {' '.join(map(str, args.seeds))} "
        f"--max-steps {args.max_steps} --batch-size {args.batch_size} "
        f"--corpus-samples {args.corpus_samples} --corpus-length {args.corpus_length} "
        f"--max-test-windows {args.max_test_windows}"
    )
    return (
        f"```\n{command}\n```\n\n"
        f"Budget per trained row and seed: {args.max_steps} Adam steps (lr {args.lr}) of "
        f"{args.batch_size} windows (P = {P}, Q = {Q}); corpora of {args.corpus_samples} samples x "
        f"{args.corpus_length} steps per source, channels = {args.host}'s series; model "
        f"{MODEL}. Test: the first {args.max_test_windows} test windows (stride {Q}), 100 "
        f"samples, standardised scale. Machine: {os.cpu_count()} cores, load {load[0]:.1f} "
        "when the table was written.\n\n"
        + table(lines, args)
        + "\nMean CRPS difference to the better static corpus (negative = the DynLMC row is "
        "better), and that difference in pooled seed standard deviations:\n\n"
        + verdict(lines, args)
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--host", default="etth1", help="dataset whose series count the corpora take"
    )
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--corpus-samples", type=int, default=16)
    parser.add_argument("--corpus-length", type=int, default=1024)
    parser.add_argument("--max-test-windows", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "synthetic_transfer")
    parser.add_argument(
        "--archive",
        type=Path,
        default=REPO / "docs" / "results" / "synthetic_issue20" / "transfer.jsonl",
    )
    parser.add_argument("--out", type=Path, default=None, help="markdown file with markers")
    parser.add_argument("--table-only", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    results = args.runs_dir / "results.jsonl"
    if not args.table_only:
        done = done_keys(read_lines(results) + read_lines(args.archive), args)
        pending = [t for t in tasks(args) if t not in done]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_task, t, args): t for t in pending}
            for future in as_completed(futures):
                new = future.result()
                for path in (results, args.archive):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("a") as fh:
                        fh.writelines(json.dumps(r) + "\n" for r in new)
                print(f"[synthetic_transfer] done {futures[future]}", file=sys.stderr, flush=True)
    block = render(read_lines(args.archive), args)
    print(block)
    if args.out is not None:
        replace_marked_block(args.out, BLOCK, block)


if __name__ == "__main__":
    main()
