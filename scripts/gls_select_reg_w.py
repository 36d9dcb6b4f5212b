"""Choose the GLS regulariser weight ``reg_w`` on the validation NLL, per training seed.

Given runs of the same model, data and seed trained at several ``reg_w`` values (LightningCLI run
directories with ``config.yaml`` and ``checkpoints/best.json``, e.g. written by
``bench_gls_accuracy.py --set model.forecaster.init_args.reg_w=V --runs-dir DIR``), each best
checkpoint is scored by its validation NLL per observed value *without* the regulariser: the
log predictive density of the validation windows, a proper score that ``reg_w`` does not enter
(it only shapes training). The lowest wins; the chosen checkpoints are then tested ``--repeats``
times with sampling seeds 1000, 1001, ... as ``bench_gls_accuracy.py`` tests, so the rows compare.
The test split is never read to choose.

    python scripts/gls_select_reg_w.py --run-name gpvar_synthetic_gls_seed{seed} --seeds 1 2 3 \
        --candidates 0=runs/bench_gls_accuracy_regw0 0.5=runs/bench_gls_accuracy_regw05 \
        2.5=runs/bench_gls_accuracy --jsonl docs/results/gls_issue13/select_reg_w.jsonl
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from probforecast.evaluate import JsonLines, format_mean_std

warnings.filterwarnings("ignore")
METRICS = ("crps", "crps_sum", "energy_score")


def load_run(run_dir: Path):
    """``(module, datamodule)`` of a finished run: its saved config, its best checkpoint."""
    from probforecast.evaluate import reload_run

    run = reload_run(run_dir)
    return run.module, run.datamodule


@torch.no_grad()
def validation_nll(module, datamodule) -> float:
    """NLL per observed validation value, the regulariser switched off: ``sum_b loss_b n_b /
    sum_b n_b`` with ``loss_b`` the forecaster's per-value loss of batch ``b`` (``n_b`` values)."""
    forecaster = module.forecaster
    saved, forecaster.reg_w = forecaster.reg_w, 0.0
    try:
        datamodule.setup("validate")
        total, count = 0.0, 0
        for batch in datamodule.val_dataloader():
            observed = int(batch.future_observed.sum())
            total += float(forecaster.loss(batch)) * observed
            count += observed
    finally:
        forecaster.reg_w = saved
    if count == 0:
        raise ValueError("the validation split has no observed value to score")
    return total / count


def test_scores(module, datamodule, repeats: int) -> dict[str, float]:
    """Test scores of ``repeats`` sampling passes (seeds 1000, 1001, ...), as
    ``bench_gls_accuracy.py`` tests; keys ``test/<metric>``."""
    from probforecast.evaluate import backtest

    scores = backtest(module, datamodule, repeats=repeats)
    return {f"test/{m}": scores[m] for m in METRICS}


def select(candidates: dict[float, Path]) -> tuple[float, dict[float, float]]:
    """``(chosen reg_w, {reg_w: validation NLL})`` over runs of one seed."""
    nll = {value: validation_nll(*load_run(run)) for value, run in candidates.items()}
    return min(nll, key=nll.__getitem__), nll


def parse_candidates(items: list[str]) -> dict[float, Path]:
    out = {}
    for item in items:
        value, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--candidates takes REG_W=RUNS_DIR items; got {item!r}")
        out[float(value)] = Path(path)
    return out


def run_path(root: Path, run_name: str, seed: int) -> Path:
    """``root/run_name`` with ``{seed}`` filled in, or ``root`` itself when it holds ``{seed}``."""
    if "{seed}" in str(root):
        return Path(str(root).format(seed=seed))
    if not run_name:
        raise SystemExit("give --run-name, or candidates as REG_W=PATH_WITH_{seed}")
    return root / run_name.format(seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candidates", nargs="+", required=True, metavar="REG_W=RUNS_DIR")
    parser.add_argument(
        "--run-name",
        default="",
        help="run directory name with {seed}, below each candidate's RUNS_DIR; or leave it out "
        "and give each candidate as REG_W=PATH_WITH_{seed}",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--repeats", type=int, default=2, help="sampling passes per seed (0: only choose)"
    )
    parser.add_argument("--jsonl", default=None, help="append one JSON line per seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the CLI does
    roots = parse_candidates(args.candidates)
    rows = []
    for seed in args.seeds:
        runs = {value: run_path(root, args.run_name, seed) for value, root in roots.items()}
        chosen, nll = select(runs)
        row = {
            "seed": seed,
            "chosen_reg_w": chosen,
            "chosen_run": str(runs[chosen]),
            "val_nll": nll,
        }
        if args.repeats:
            row |= test_scores(*load_run(runs[chosen]), args.repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.jsonl:
            JsonLines(args.jsonl).append(row)
    for m in METRICS if args.repeats else ():
        print(f"test/{m}: {format_mean_std(r[f'test/{m}'] for r in rows)}")


if __name__ == "__main__":
    main()
