"""Bayesian-optimised mixing of synthetic sources (spec-dynlmc Algorithm 2, optuna TPE).

Each trial draws mixture weights ``gamma`` over ``--sources``, trains a small GaussianRNN of
probforecast from the same initial weights on ``batch_size x max_steps`` synthetic windows
allocated by ``gamma`` (``data.train_source`` in ``weighted`` mode, channels = the dataset's
series), and scores it by MAE on the *validation* split of the real ``--dataset`` (disjoint
from its test split). Prints every trial and ``gamma*``.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bo_mixing.py --dataset etth1 \
        --data-root ../shared/data --trials 3 --max-steps 20
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings

import lightning.pytorch as pl
import numpy as np

from probforecast.data import DATASETS, ForecastDataModule
from probforecast.data.synthetic.bo import MixtureSearch, optimise_mixture
from probforecast.data.synthetic.mixing import SyntheticSourceOptions
from probforecast.models import GaussianRNN
from probforecast.models.module import ForecastModule


def val_window_option(dataset: str, count: int) -> dict[str, int]:
    """``count`` validation windows, with the option the dataset's split protocol reads."""
    info = DATASETS.get(dataset)
    rolling = info is not None and info.protocol == "rolling"
    return {"num_val_windows" if rolling else "max_val_windows": count}


def make_objective(args, cache: str):
    def objective(gamma: np.ndarray) -> float:
        dm = ForecastDataModule(
            args.dataset,
            root=args.data_root,
            context_length=args.context,
            prediction_length=args.horizon,
            cache_dir=cache,
            batch_size=args.batch_size,
            num_batches_per_epoch=args.max_steps,
            **val_window_option(args.dataset, args.val_windows),
            seed=args.seed,
            train_source=SyntheticSourceOptions(
                sources=tuple(args.sources),
                mode="weighted",
                weights=tuple(float(g) for g in gamma),
                num_samples=args.samples,
                length=args.length,
                seed=args.seed,
            ),
        )
        dm.setup("fit")
        pl.seed_everything(args.seed, verbose=False)  # the same phi_0 for every trial
        forecaster = GaussianRNN(
            dm.target_dim,
            dm.context_length,
            dm.prediction_length,
            dm.freq,
            dm.num_time_features,
            hidden_size=args.hidden,
            num_layers=1,
        )
        module = ForecastModule(forecaster, num_samples=args.eval_samples, metrics=["mae", "crps"])
        trainer = pl.Trainer(
            max_steps=args.max_steps,
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            accelerator="cpu",
        )
        trainer.fit(module, datamodule=dm)
        return float(trainer.validate(module, datamodule=dm, verbose=False)[0]["val/mae"])

    return objective


def main(argv: list[str] | None = None) -> MixtureSearch:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="etth1")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument(
        "--sources", nargs="+", default=["dynlmc_drift", "dynlmc_lag", "dynlmc_regime"]
    )
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4, help="samples per source corpus")
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--context", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--val-windows", type=int, default=16)
    parser.add_argument("--eval-samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        search = optimise_mixture(
            make_objective(args, args.cache_dir or tmp), args.sources, args.trials, args.seed
        )
    print(
        f"# bo_mixing: {args.dataset} validation MAE, {args.trials} trials x {args.max_steps} steps"
    )
    print("| trial | " + " | ".join(f"gamma {s}" for s in search.sources) + " | val MAE |")
    print("|---|" + "---|" * len(search.sources) + "---|")
    for t in search.trials:
        print(f"| {t.number} | " + " | ".join(f"{g:.3f}" for g in t.gamma) + f" | {t.loss:.4f} |")
    best = search.best
    star = ", ".join(f"{s}: {g:.3f}" for s, g in zip(search.sources, best.gamma, strict=True))
    print(f"\ngamma* = {{{star}}} (trial {best.number}, val MAE {best.loss:.4f})")
    return search


if __name__ == "__main__":
    main()
