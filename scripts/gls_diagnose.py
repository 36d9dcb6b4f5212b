"""Diagnose a trained GPVar / Transformer (w/ or w/o GLS) on its test windows.

Prints, from the teacher-forced pass over the test windows (scaled units): the mixture weights
of ``C_t`` (GLS), the one-step residuals' per-series std and their uncentred covariance
(a large top eigenvalue with small per-series std = a common *bias* of the mean), the model's
per-series marginal std and the eigenvalues of its mean ``L L^T``, the joint NLL with the
learned ``C`` and with ``C = I``, and the paper's CRPS of rolled samples with the conditional
sampler and with the per-step marginal (``C`` ignored).

    python scripts/gls_diagnose.py runs/reproduce_gls/exchange_rate_nips/gpvar_gls_seed1 \
        --config configs/gpvar/exchange_rate_nips.yaml --config configs/protocols/gls_paper.yaml
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from probforecast.cli import ProbForecastCLI
from probforecast.distributions import gls_log_prob
from probforecast.metrics.functional import window_mean_scores
from probforecast.models.module import ForecastModule

REPO = Path(__file__).resolve().parents[1]


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


@torch.no_grad()
def diagnose(module: ForecastModule, batch) -> None:
    f = module.forecaster
    q = f.prediction_length
    seq = torch.cat([batch.past_target, batch.future_target], 1)
    observed = torch.cat([batch.past_observed, batch.future_observed], 1)
    time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], 1)
    hidden, _ = f._hidden(f._inputs(seq, observed, time_feat, batch.series_ids, f.max_lag))
    hidden = hidden[:, -q:]
    mu, factor, diag = f.head(hidden)
    res = seq[:, -q:] - mu
    if f.correlation is not None and f.correlation.kind == "kernel":
        w = f.correlation.mixture_weights(hidden).mean((0, 1))
        print("mixture weights (SE kernels..., identity):", _fmt(w.tolist()))
    print("residual std per series:", _fmt(res.std((0, 1)).tolist()))
    second = torch.einsum("bqn,bqm->nm", res, res) / (res.shape[0] * q)
    print(
        "eigenvalues of the residuals' uncentred covariance:",
        _fmt(torch.linalg.eigvalsh(second).tolist()),
    )
    print(
        "model marginal std per series:",
        _fmt((factor.square().sum(-1) + diag).sqrt().mean((0, 1)).tolist()),
    )
    low = torch.einsum("bqnr,bqmr->nm", factor, factor) / (res.shape[0] * q)
    print("eigenvalues of the mean L L^T:", _fmt(torch.linalg.eigvalsh(low).tolist()))
    d = f.horizon_d if f.correlation is not None else 1
    if f.correlation is not None:
        windows = lambda x: x.unflatten(1, (q // d, d))  # noqa: E731
        corr = f.correlation.matrix(hidden[:, d - 1 :: d])
        for name, c in (("learned C", corr), ("C = I", torch.eye(d).expand_as(corr))):
            lp = gls_log_prob(windows(seq[:, -q:]), windows(mu), windows(factor), windows(diag), c)
            print(f"joint NLL per value with {name}: {float(-lp.sum() / res.numel()):.4f}")
    torch.manual_seed(0)
    samples = f.sample(batch, 100)
    truth = batch.unscale(batch.future_target)
    crps = window_mean_scores(batch.unscale(samples), truth)["crps"].mean()
    print(f"CRPS (paper aggregation), conditional sampler: {float(crps):.4f}")
    if f.correlation is not None:
        correlation, f.correlation = f.correlation, None
        torch.manual_seed(0)
        marginal = f.sample(batch, 100)
        f.correlation = correlation
        crps = window_mean_scores(batch.unscale(marginal), truth)["crps"].mean()
        print(f"CRPS (paper aggregation), per-step marginal sampler: {float(crps):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a run's default_root_dir (holds checkpoints/best.json)")
    parser.add_argument("--config", action="append", required=True)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    cli_args = [a for c in args.config for a in ("--config", c)]
    cli = ProbForecastCLI(
        args=[*cli_args, "--data.root", args.data_root, "--trainer.logger", "false"], run=False
    )
    best = json.loads((Path(args.run_dir) / "checkpoints" / "best.json").read_text())
    module = ForecastModule.load_from_checkpoint(
        best["best_model_path"], forecaster=cli.model.forecaster, weights_only=True
    ).eval()
    cli.datamodule.setup("test")
    diagnose(module, next(iter(cli.datamodule.test_dataloader())))


if __name__ == "__main__":
    main()
