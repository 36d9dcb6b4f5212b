"""ETTh1 168 -> 192, CW vs Raw for CW-Diff and CW-Flow (paper Tables 2, 7, 8), scaled to CPU.

Pipeline, all through the package: train a JMCE with ``ForecastModule`` + Lightning, save its
checkpoint, train CW-Diff / CW-Flow two-stage on it (frozen JMCE, eigh whitening) and their Raw
versions (``prior=standard``, same network, steps and seeds), then evaluate the 8 non-overlapping
test segments of the CW-Gen protocol with ``--samples`` draws per window. Metrics as the paper,
on the standardised scale (CRPS per entry, QICE x100, ProbCorr, ProbMSE/ProbMAE = MSE/MAE of the
sample mean as the official code), plus CRPS / MSE on the original scale.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_cwgen_etth1.py --data-root ../shared/data \
        [--dataset etth1] [--jmce-steps 60] [--gen-steps 100] [--samples 30]
"""

from __future__ import annotations

import argparse
import functools
import logging
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from probforecast.data import ForecastDataModule
from probforecast.metrics import build_metric_collection
from probforecast.models import JMCE, CWDiff, CWFlow, JMCESpec
from probforecast.models.module import ForecastModule

METRICS = ["crps_unnormalized", "qice", "prob_corr", "mse", "mae", "prob_mse", "prob_mae"]
# paper Table 2 (CRPS, QICE, ProbCorr) and Tables 7/8 (ProbMSE, ProbMAE), ETTh1, mean of 10 seeds
PAPER = {
    ("CW-Diff", "Raw"): "TimeDiff 0.787 / 9.038 / 0.320 / 1.366 / 0.899",
    ("CW-Diff", "CW"): "TimeDiff 0.505 / 8.821 / 0.243 / 0.756 / 0.581",
    ("CW-Flow", "Raw"): "FlowTS 0.724 / 8.820 / 0.354 / 1.006 / 0.742",
    ("CW-Flow", "CW"): "FlowTS 0.488 / 8.817 / 0.254 / 0.698 / 0.598",
}


def train(forecaster, dm, steps: int, lr: float, seed: int) -> ForecastModule:
    pl.seed_everything(seed, workers=True, verbose=False)
    module = ForecastModule(
        forecaster,
        optimizer=functools.partial(torch.optim.AdamW, lr=lr, weight_decay=5e-4),
        num_samples=2,
        metrics_on_scaled=True,
    )
    trainer = pl.Trainer(
        max_steps=steps, max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        gradient_clip_val=1.0, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, dm.train_dataloader())
    module.trainer_ref = trainer
    return module


@torch.no_grad()
def evaluate(forecaster, dm, samples: int, seed: int) -> dict[str, float]:
    forecaster.eval()
    scaled = build_metric_collection(metrics=METRICS)
    raw = build_metric_collection(metrics=["crps_unnormalized", "mse"])
    torch.manual_seed(seed)
    for batch in dm.test_dataloader():
        pred = forecaster.sample(batch, samples)
        scaled.update(pred, batch.future_target, mask=batch.future_observed,
                      past_target=batch.past_target, past_observed=batch.past_observed)  # fmt: skip
        raw.update(batch.unscale(pred), batch.unscale(batch.future_target),
                   mask=batch.future_observed)  # fmt: skip
    out = {k: float(v) for k, v in scaled.compute().items()}
    out["qice"] *= 100
    out.update({f"raw_{k}": float(v) for k, v in raw.compute().items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--dataset", default="etth1")
    parser.add_argument("--jmce-steps", type=int, default=60)
    parser.add_argument("--gen-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--diffusion-steps", type=int, default=20, help="DDIM sampling steps")
    parser.add_argument("--flow-steps", type=int, default=10, help="Euler steps")
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--seed", type=int, default=114)
    parser.add_argument(
        "--generators", nargs="+", default=["CW-Diff", "CW-Flow"], choices=["CW-Diff", "CW-Flow"]
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    dm = ForecastDataModule(
        args.dataset, root=args.data_root, context_length=168, prediction_length=192,
        val_stride=360, test_stride=360, max_val_windows=8, batch_size=args.batch_size,
        num_batches_per_epoch=50, eval_batch_size=8, seed=args.seed,
    )  # fmt: skip
    dm.setup("fit")
    facts = dict(target_dim=dm.target_dim, context_length=168, prediction_length=192,
                 freq=dm.freq, num_time_features=dm.num_time_features)  # fmt: skip
    d = args.d_model
    jmce_sizes = dict(d_model=d, n_heads=2, e_layers=1, d_layers=1, d_ff=2 * d, dropout=0.0)
    net_sizes = dict(d_model=d, n_heads=2, num_layers=2, d_ff=2 * d, dropout=0.0)
    print(f"{args.dataset}: N={dm.target_dim}, test windows={len(dm.test_dataloader().dataset)}, "
          f"threads={torch.get_num_threads()}, {vars(args)}")  # fmt: skip
    t0 = time.perf_counter()
    jmce = train(JMCE(**facts, cov_window=95, **jmce_sizes), dm, args.jmce_steps, 1e-3, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "jmce.ckpt"
        jmce.trainer_ref.save_checkpoint(ckpt)
        jm = evaluate(jmce.forecaster, dm, args.samples, args.seed)
        print(f"JMCE trained in {time.perf_counter() - t0:.0f}s; as a forecaster: {jm}")
        rows = []
        for name, cls, extra in (
            ("CW-Diff", CWDiff, dict(sampling_steps=args.diffusion_steps)),
            ("CW-Flow", CWFlow, dict(sampling_steps=args.flow_steps, fft_weight=192**0.5 / 5)),
        ):
            if name not in args.generators:
                continue
            for variant, prior in (("Raw", dict(prior="standard")),
                                   ("CW", dict(jmce=JMCESpec(str(ckpt), cov_window=95,
                                                             **jmce_sizes)))):  # fmt: skip
                t1 = time.perf_counter()
                torch.manual_seed(args.seed)
                model = cls(**facts, **net_sizes, **extra, **prior)
                train(model, dm, args.gen_steps, 1e-3, args.seed)
                t_train = time.perf_counter() - t1
                res = evaluate(model, dm, args.samples, args.seed)
                res["train_s"], res["total_s"] = t_train, time.perf_counter() - t1
                rows.append((name, variant, res))
                print(name, variant, {k: round(v, 4) for k, v in res.items()}, flush=True)
    print("\n| model | prior | CRPS | QICE x100 | ProbCorr | ProbMSE | ProbMAE | CRPS (orig.) | "
          "MSE (orig.) | ProbMSE/ProbMAE (paper def.) | train s | paper (CRPS / QICE / ProbCorr / "
          "ProbMSE / ProbMAE) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, variant, r in rows:
        print(f"| {name} | {variant} | {r['crps_unnormalized']:.3f} | {r['qice']:.2f} | "
              f"{r['prob_corr']:.3f} | {r['mse']:.3f} | {r['mae']:.3f} | "
              f"{r['raw_crps_unnormalized']:.3f} | {r['raw_mse']:.3f} | "
              f"{r['prob_mse']:.3f} / {r['prob_mae']:.3f} | {r['train_s']:.0f} | "
              f"{PAPER[(name, variant)]} |")  # fmt: skip
    print(f"JMCE alone | {jm['crps_unnormalized']:.3f} | {jm['qice']:.2f} | {jm['prob_corr']:.3f} "
          f"| {jm['mse']:.3f} | {jm['mae']:.3f}; total wall {time.perf_counter() - t0:.0f}s")  # fmt: skip


if __name__ == "__main__":
    main()
