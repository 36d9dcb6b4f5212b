"""VolDy-VAE benchmarks (issue 6): accuracy beside the paper's Tables XIII-XIV and efficiency.

``accuracy``: for each dataset x horizon x seed, fit from ``configs/voldy_vae/<dataset>.yaml``
(+ the horizon overlay) within the stated budget (default the official one: <= 50 epochs of 100
batches, early stopping with patience 10), validating under ``--protocol`` (default ProbTS'),
keep the checkpoint with the best validation CRPS, then score the test split under BOTH
protocols (one JSON line each): ``probts`` (windows every 96 steps, mean of per-window ratios)
and ``stride1`` (every start thinned to ``--max-test-windows``, pooled ratios), with 100 samples: CRPS as ProbTS computes it (quantile loss
over 19 levels / sum|y|), exact CRPS / sum|y|, NMAE (median), VolDy's QICE (x100), Cov95 (x100),
Sharp95 (95% width / test std) and rho_sigma (lag-1 autocorrelation of the predicted scale,
averaged over 8 latent draws). Prints a markdown table with mean +- std over seeds and the paper.

    python scripts/bench_voldy.py accuracy --data-root ../shared/data --datasets etth1 \
        --horizons 96 --seeds 1 2 3 --set latent_dim=256 --jsonl runs/voldy.jsonl
    python scripts/bench_voldy.py table runs/voldy.jsonl      # mean +- std over the seeds

``efficiency``: ETTh2-shaped model (C=7, L=96, H=720), batch size 1, 100 samples (Table XII):
sampling time of our vectorised sampler vs the official code's Python loop over samples (same
process, ratio printed), training time per epoch (100 batches of 64) and the peak memory.

    python scripts/bench_voldy.py efficiency --repeats 20
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from probforecast.data import ForecastDataModule
from probforecast.data.batch import ForecastBatch
from probforecast.evaluate import JsonLines, backtest, fit_run, format_mean_std, in_band
from probforecast.metrics import build_metric_collection
from probforecast.models import VolDyVAE
from probforecast.models.module import ForecastModule
from probforecast.models.voldy.diagnostics import lag1_autocorrelation
from probforecast.models.voldy.likelihoods import sample_noise

warnings.filterwarnings("ignore")
torch.set_flush_denormal(True)
REPO = Path(__file__).resolve().parents[1]
METRICS = ["crps_quantile", "crps", "nmae", "quantile_coverage_error", "coverage"]
#: Paper Tables XIII (CRPS) / XIV (NMAE), VolDy-VAE column: (mean, std), 6 seeds.
PAPER = {
    ("etth1", 96): ((0.252, 0.010), (0.328, 0.019)),
    ("etth1", 192): ((0.277, 0.012), (0.365, 0.015)),
    ("etth1", 336): ((0.300, 0.015), (0.384, 0.018)),
    ("etth1", 720): ((0.310, 0.012), (0.389, 0.013)),
    ("etth2", 96): ((0.148, 0.005), (0.183, 0.009)),
    ("etth2", 192): ((0.162, 0.010), (0.201, 0.015)),
    ("etth2", 336): ((0.175, 0.016), (0.221, 0.020)),
    ("etth2", 720): ((0.174, 0.010), (0.223, 0.015)),
    ("ettm1", 96): ((0.208, 0.009), (0.268, 0.009)),
    ("ettm1", 192): ((0.240, 0.010), (0.309, 0.012)),
    ("ettm1", 336): ((0.251, 0.022), (0.327, 0.010)),
    ("ettm1", 720): ((0.279, 0.020), (0.367, 0.023)),
    ("weather", 96): ((0.070, 0.005), (0.077, 0.009)),
    ("weather", 192): ((0.067, 0.006), (0.080, 0.010)),
    ("weather", 336): ((0.071, 0.008), (0.086, 0.005)),
    ("weather", 720): ((0.073, 0.003), (0.086, 0.006)),
    ("exchange_ltsf", 96): ((0.022, 0.003), (0.029, 0.002)),
    ("exchange_ltsf", 192): ((0.030, 0.008), (0.037, 0.006)),
    ("exchange_ltsf", 336): ((0.041, 0.005), (0.050, 0.002)),
    ("exchange_ltsf", 720): ((0.065, 0.004), (0.077, 0.012)),
}

#: Paper Table VI (scale-head ablation, no std given): init_arg -> (dataset, H) -> (CRPS, NMAE).
PAPER_ABLATION = {
    "scale_head=mlp": {
        ("etth1", 96): (0.271, 0.350),
        ("etth1", 192): (0.296, 0.381),
        ("etth1", 336): (0.320, 0.401),
        ("etth1", 720): (0.328, 0.406),
        ("etth2", 96): (0.162, 0.206),
        ("etth2", 192): (0.179, 0.223),
        ("etth2", 336): (0.195, 0.243),
        ("etth2", 720): (0.197, 0.248),
    },
    "scale_head=lstm": {
        ("etth1", 96): (0.255, 0.331),
        ("etth1", 192): (0.280, 0.368),
        ("etth1", 336): (0.304, 0.388),
        ("etth1", 720): (0.314, 0.393),
        ("etth2", 96): (0.151, 0.186),
        ("etth2", 192): (0.165, 0.205),
        ("etth2", 336): (0.179, 0.225),
        ("etth2", 720): (0.178, 0.227),
    },
}


def paper_cells(dataset: str, horizon: int, bud: str) -> tuple[str, str]:
    """The paper's CRPS and NMAE for this row (the ablation's table when the budget names one)."""
    for arg, table in PAPER_ABLATION.items():
        if f"'{arg}'" in bud:
            values = table.get((dataset, horizon))
            return (f"{values[0]:.3f}", f"{values[1]:.3f}") if values else ("-", "-")
    paper = PAPER.get((dataset, horizon))
    return tuple(f"{m:.3f} ± {s:.3f}" for m, s in paper) if paper else ("-", "-")


# ---------------------------------------------------------------------------------- accuracy
#: Evaluation protocols: the data options and metric aggregation of each (see configs/protocols).
PROTOCOLS = ("probts", "stride1")


def protocol_data_options(protocol: str, args) -> dict[str, object]:
    """``probts``: ProbTS' windows stepping by 96, every window; ``stride1``: every test start
    thinned to ``--max-test-windows``, validation stepping by H (at most 32)."""
    if protocol == "probts":
        return {"protocol": "probts", "val_stride": None, "test_stride": None,
                "max_val_windows": None, "max_test_windows": None}  # fmt: skip
    return {"protocol": "default", "val_stride": None, "test_stride": 1,
            "max_val_windows": 32, "max_test_windows": args.max_test_windows}  # fmt: skip


def cli_args(args, dataset: str, horizon: int, seed: int, run_dir: Path) -> list[str]:
    configs = ["--config", str(REPO / "configs" / "voldy_vae" / f"{dataset}.yaml")]
    if horizon != 96:
        configs += [
            "--config",
            str(REPO / "configs" / "voldy_vae" / "horizons" / f"h{horizon}.yaml"),
        ]
    if args.protocol == "stride1":
        configs += ["--config", str(REPO / "configs" / "protocols" / "ltsf_stride1.yaml")]
        configs += [f"--data.max_test_windows={args.max_test_windows}"]
    overrides = [
        f"--seed_everything={seed}",
        f"--data.root={args.data_root}",
        f"--data.seed={seed}",
        f"--trainer.default_root_dir={run_dir}",
        f"--trainer.max_epochs={args.epochs}",
        f"--data.num_batches_per_epoch={args.batches_per_epoch}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--forecast_plot.every_n_val_epochs=0",
        "--trainer.accelerator=auto",
    ]
    for item in args.set or []:
        overrides.append(f"--model.forecaster.init_args.{item}")
    for item in args.data_set or []:
        overrides.append(f"--data.{item}")
    return configs + overrides


def protocol_datamodule(datamodule: ForecastDataModule, protocol: str, args) -> ForecastDataModule:
    """The fitted run's data (same dataset, look-back, scaler range) under ``protocol``."""
    given = {k: v for k, v in datamodule.hparams.items() if not k.startswith("_")}
    options = {**given, **protocol_data_options(protocol, args)}
    other = ForecastDataModule(**options)
    other.setup("test")
    if other.split.train_end != datamodule.split.train_end:
        raise RuntimeError("the two protocols must share the training range (same scaler)")
    return other


@torch.no_grad()
def evaluate(
    module: ForecastModule, datamodule, num_samples: int, aggregation: str
) -> dict[str, float]:
    """Test metrics on the raw scale (VolDy-VAE's table keys) plus rho_sigma."""
    module.eval()
    device = module.device
    metrics = build_metric_collection(
        metrics=METRICS, interval_level=0.95, aggregation=aggregation
    ).to(device)
    width = build_metric_collection(metrics=["normalized_interval_width"], interval_level=0.95)
    width = width.to(device)
    std = datamodule.series_test_std.to(device)
    rho_sum, rho_count = 0.0, 0
    for batch in datamodule.test_dataloader():
        batch: ForecastBatch = batch.to(device)
        samples = batch.unscale(module.draw_samples(batch, num_samples))
        target = batch.unscale(batch.future_target)
        metrics.update(samples, target, mask=batch.future_observed)
        width.update(
            samples, target, mask=batch.future_observed, series_scale=std[batch.series_ids]
        )
        forecaster: VolDyVAE = module.forecaster
        if forecaster.scale_head is not None:
            sigma = forecaster.predictive_scale(batch, 8).mean(1)  # [B, H, C]
            rho = lag1_autocorrelation(sigma)
            rho_sum += float(torch.nansum(rho))
            rho_count += int((~torch.isnan(rho)).sum())
    out = {k: float(v) for k, v in {**metrics.compute(), **width.compute()}.items()}
    out["quantile_coverage_error"] *= 100
    out["coverage_95"] *= 100
    out["rho_sigma"] = rho_sum / rho_count if rho_count else float("nan")
    return out


def run_accuracy(args) -> None:
    rows = []
    for dataset in args.datasets:
        for horizon in args.horizons:
            per_seed = []
            for seed in args.seeds:
                run_dir = Path(args.run_root) / f"{dataset}_h{horizon}_s{seed}"
                run = fit_run(cli_args(args, dataset, horizon, seed, run_dir))
                for protocol in PROTOCOLS:
                    data = protocol_datamodule(run.datamodule, protocol, args)
                    aggregation = "window_mean" if protocol == "probts" else "pooled"
                    scores = backtest(
                        run.module,
                        data,
                        scorer=lambda m, d, a=aggregation: evaluate(m, d, args.num_samples, a),
                    )
                    result = {k: v for k, v in scores.items() if not k.endswith("_repeat_std")}
                    result.update(
                        fit_s=run.fit["fit_seconds"],
                        test_s=result.pop("test_seconds"),
                        epochs=run.fit["epochs"],
                        best_epoch=run.fit["best_epoch"],
                        test_windows=len(data.split.test_starts),
                    )
                    del result["repeats"]
                    record = {"dataset": dataset, "H": horizon, "seed": seed, **result}
                    record["budget"] = budget(args, protocol)
                    print(json.dumps(record), flush=True)
                    if args.jsonl:
                        JsonLines(args.jsonl).append(record)
                    if protocol == "probts":
                        per_seed.append(result)
            rows.append((dataset, horizon, per_seed))
    print(format_table(rows, budget(args, "probts")))


def budget(args, evaluated: str) -> str:
    """The budget line of a table: training, selection protocol and the test protocol."""
    test = (
        "ProbTS protocol (test windows every 96 steps, all of them, mean of per-window ratios)"
        if evaluated == "probts"
        else f"stride-1 test windows (<= {args.max_test_windows} evenly spaced), pooled ratios"
    )
    return (
        f"<= {args.epochs} epochs x {args.batches_per_epoch} batches of 64, early stopping "
        f"(patience 10) and best checkpoint on val/crps under the {args.protocol} protocol; "
        f"test: {test}; {args.num_samples} samples, init_args {args.set or []}"
        + (f", data {args.data_set}" if args.data_set else "")
    )


def run_table(args) -> None:
    """Aggregate the JSON lines written by ``accuracy --jsonl`` into the markdown table."""
    groups: dict[tuple, list[dict]] = {}
    for path in args.files:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                groups.setdefault((r["dataset"], r["H"], r["budget"]), []).append(r)
    for bud in dict.fromkeys(k[2] for k in groups):
        rows = [(d, h, res) for (d, h, b), res in groups.items() if b == bud]
        print(format_table(rows, bud))


def _ms(values: list[float], digits: int = 3) -> str:
    return format_mean_std(values, digits)


def band(values: list[float], paper: tuple[float, float] | None) -> str:
    """``yes`` when |our mean - the paper's mean| <= 2 sqrt(our seed std^2 + the paper's std^2)
    (the rule of docs/gls_accuracy.md: a two-sigma test on the difference of the means)."""
    if paper is None:
        return "-"
    if in_band(values, paper):
        return "yes"
    return f"no ({statistics.fmean(values) - paper[0]:+.3f})"


def format_table(rows, bud: str) -> str:
    head = (
        f"\nBudget: {bud}.\n\n"
        "| dataset | H | seeds | CRPS (ProbTS, 19 q) | paper CRPS | in band | NMAE | paper NMAE | "
        "in band | exact CRPS | QICE | Cov95 | Sharp95 | ρσ | best epoch | fit s/seed | windows |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for dataset, horizon, res in rows:
        pc, pn = paper_cells(dataset, horizon, bud)
        ablation = any(f"'{arg}'" in bud for arg in PAPER_ABLATION)
        paper = None if ablation else PAPER.get((dataset, horizon))

        def col(key, digits=3, res=res):
            return _ms([r[key] for r in res], digits)

        band_c = band([r["crps_quantile"] for r in res], paper[0] if paper else None)
        band_n = band([r["nmae"] for r in res], paper[1] if paper else None)
        epochs = "/".join(str(r.get("best_epoch", "?")) for r in res)
        lines.append(
            f"| {dataset} | {horizon} | {len(res)} | {col('crps_quantile')} | {pc} | {band_c} | "
            f"{col('nmae')} | {pn} | {band_n} | "
            f"{col('crps')} | {col('quantile_coverage_error', 2)} | {col('coverage_95', 1)} | "
            f"{col('normalized_interval_width_95', 2)} | {col('rho_sigma', 2)} | {epochs} | "
            f"{statistics.fmean(r['fit_s'] for r in res):.0f} | {res[0]['test_windows']} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- efficiency
def loop_sample(model: VolDyVAE, batch: ForecastBatch, num_samples: int) -> torch.Tensor:
    """The official code's sampler: encode once, then one decode per sample in a Python loop."""
    mu, logvar = model.encode(batch)
    draws = []
    for _ in range(num_samples):
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        out = model.decode(z, with_past=False)
        draws.append(sample_noise(model.likelihood, out.loc, out.scale))
    return torch.cat(draws, dim=1)


def _batch(b: int, ctx: int, h: int, c: int, device) -> ForecastBatch:
    z = torch.randn(b, ctx + h, c, device=device).cumsum(1) * 0.1
    ones = torch.ones_like(z, dtype=torch.bool)
    zeros = torch.zeros(b, c, device=device)
    return ForecastBatch(
        z[:, :ctx], ones[:, :ctx], torch.zeros(b, ctx, 0, device=device),
        torch.zeros(b, h, 0, device=device), z[:, ctx:], ones[:, ctx:],
        torch.arange(c, device=device).repeat(b, 1), zeros, zeros + 1,
        torch.arange(b, device=device),
    )  # fmt: skip


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_efficiency(args) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    c, ctx, h = 7, 96, 720
    torch.manual_seed(0)
    model = VolDyVAE(c, ctx, h).to(device).eval()
    one = _batch(1, ctx, h, c, device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        ours = _timed(lambda: model.sample(one, 100), args.repeats)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
        ref = _timed(lambda: loop_sample(model, one, 100), args.repeats)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [_batch(64, ctx, h, c, device) for _ in range(4)]

    def epoch():
        for i in range(100):
            opt.zero_grad()
            loss = model.loss(batches[i % 4])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()

    epoch_s = _timed(epoch, 1)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"VolDy-VAE C={c} L={ctx} H={h} ({params:,} parameters) on {device}, "
        f"torch threads {torch.get_num_threads()}:\n"
        f"  100 samples, batch 1: vectorised {ours * 1e3:.1f} ms, official-style loop "
        f"{ref * 1e3:.1f} ms, ratio loop/vectorised {ref / ours:.1f}x "
        f"({ours / 100 * 1e3:.3f} ms per sample; paper: 620 ms per sample on an RTX 4090)\n"
        f"  peak RSS growth while sampling: {(rss1 - rss0) / 1024:.1f} MiB (process peak "
        f"{rss1 / 1024:.0f} MiB); parameters {params * 4 / 2**20:.1f} MiB"
        + (f"; CUDA peak allocated while sampling {gpu_peak:.1f} MiB\n" if gpu_peak else "\n")
        + f"  training: {epoch_s:.2f} s per epoch of 100 batches of 64"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    acc.add_argument("--datasets", nargs="+", default=["etth1"])
    acc.add_argument("--horizons", nargs="+", type=int, default=[96])
    acc.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    acc.add_argument("--epochs", type=int, default=50, help="max epochs (official: 50)")
    acc.add_argument("--batches-per-epoch", type=int, default=100)
    acc.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="probts",
        help="split of training and validation (selection); the test runs under both",
    )
    acc.add_argument("--max-test-windows", type=int, default=500, help="stride1 test windows")
    acc.add_argument("--num-samples", type=int, default=100)
    acc.add_argument("--set", nargs="*", help="forecaster init_args, e.g. scale_head=mlp")
    acc.add_argument("--data-set", nargs="*", help="data options, e.g. missing_values=[-9999]")
    acc.add_argument("--run-root", default="runs/bench_voldy")
    acc.add_argument("--jsonl", default=None, help="append one JSON line per run to this file")
    tab = sub.add_parser("table")
    tab.add_argument("files", nargs="+", help="JSON-lines files written by accuracy --jsonl")
    eff = sub.add_parser("efficiency")
    eff.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    commands = {"accuracy": run_accuracy, "table": run_table, "efficiency": run_efficiency}
    commands[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
