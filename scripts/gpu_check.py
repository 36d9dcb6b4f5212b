"""Device check (issue 16 item 5): one markdown table of what a GPU session should measure.

1. every registered metric at ``S=100, B=64, Q=24, N=370`` (one ``update`` + ``compute``):
   time and peak memory;
2. the GLS log-likelihood forward + backward at ``D=24, B=200, R=10, W=16``;
3. one training epoch and one test pass of each model family on synthetic data, in fp32 and in
   the mixed precision of ``configs/trainer/gpu.yaml`` (``16-mixed``; ``bf16-mixed`` on CPU).

    bash scripts/gpu_check.sh                      # GPU: full sizes, writes docs/gpu_check.md
    python scripts/gpu_check.py --device cpu --tiny --out /tmp/gpu_check.md   # CI smoke run

Times are wall-clock seconds around a synchronised call (the first call of each item is a
warm-up and not timed). Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU
the growth of the process' peak RSS (``-`` when the peak did not grow).
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    metric: tuple[int, int, int, int]  # S, B, Q, N
    gls: tuple[int, int, int, int]  # W, D, B, R
    series: int
    context: int
    horizon: int
    train_batches: int
    test_windows: int


FULL = Sizes((100, 64, 24, 370), (16, 24, 200, 10), 32, 96, 24, 20, 64)
TINY = Sizes((8, 4, 6, 5), (2, 4, 6, 2), 4, 24, 6, 2, 2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(fn: Callable[[], object], device: torch.device) -> tuple[float, str]:
    """Warm-up call, then one timed call; returns (seconds, peak memory cell)."""
    fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    fn()
    _sync(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        return seconds, f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return seconds, f"+{grown:.0f} MiB RSS" if grown > 0 else "-"


def metric_rows(sizes: Sizes, device: torch.device) -> list[list[str]]:
    from probforecast.metrics import METRIC_REGISTRY, build_metric_collection

    s, b, q, n = sizes.metric
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(b, s, q, n, generator=gen).to(device)
    target = torch.randn(b, q, n, generator=gen).to(device) + 0.5
    past = torch.randn(b, 2 * q, n, generator=gen).to(device)
    scale = (0.5 + torch.rand(b, n, generator=gen)).to(device)
    rows = []
    for name in sorted(METRIC_REGISTRY):

        def run(name=name):
            metric = build_metric_collection(metrics=[name]).to(device)
            metric.update(samples, target, past_target=past, series_scale=scale)
            return metric.compute()

        seconds, memory = _measure(run, device)
        rows.append(["metric", name, f"S={s} B={b} Q={q} N={n}", "fp32", f"{seconds:.3f}", memory])
    return rows


def gls_rows(sizes: Sizes, device: torch.device) -> list[list[str]]:
    from probforecast.distributions import gls_log_prob

    w, d, b, r = sizes.gls
    gen = torch.Generator().manual_seed(0)
    loc = torch.randn(w, d, b, generator=gen)
    factor = torch.randn(w, d, b, r, generator=gen) / math.sqrt(r)
    diag = 0.5 + torch.rand(w, d, b, generator=gen)
    value = loc + torch.randn(w, d, b, generator=gen)
    lag = torch.arange(d, dtype=torch.float32)
    corr = 0.5 * torch.eye(d) + 0.5 * torch.exp(-((lag[:, None] - lag[None]) ** 2) / 8.0)
    inputs = [x.to(device) for x in (value, loc, factor, diag, corr)]
    for x in inputs[1:4]:
        x.requires_grad_(True)

    def run():
        logp = gls_log_prob(*inputs).sum()
        logp.backward()
        return logp

    seconds, memory = _measure(run, device)
    return [["gls log-lik fwd+bwd", "gls_log_prob", f"W={w} D={d} B={b} R={r}", "fp32",
             f"{seconds:.3f}", memory]]  # fmt: skip


def _families(dm) -> dict[str, tuple[type, dict]]:
    from probforecast.models import (
        CWDiff,
        CWFlow,
        GaussianRNN,
        GPVar,
        TransformerForecaster,
        VolDyVAE,
    )

    small = {"hidden_size": 16, "rank": 4, "lags": [1, 2, 4]}
    cw = {"prior": "standard", "d_model": 16, "n_heads": 2}
    return {
        "GaussianRNN": (GaussianRNN, {"hidden_size": 16}),
        "GPVar+GLS": (GPVar, {**small, "likelihood": "gls"}),
        "Transformer+GLS": (TransformerForecaster, {**small, "likelihood": "gls"}),
        "VolDy-VAE": (VolDyVAE, {"latent_dim": 16, "mlp_hidden": 32}),
        "CW-Diff (Raw)": (CWDiff, {**cw, "sampling_steps": 10}),
        "CW-Flow (Raw)": (CWFlow, {**cw, "sampling_steps": 5}),
    }


def model_rows(sizes: Sizes, device: torch.device, precisions: list[str]) -> list[list[str]]:
    import lightning.pytorch as pl

    from probforecast.data import ForecastDataModule, SyntheticOptions
    from probforecast.models.module import ForecastModule

    dm = ForecastDataModule(
        "synthetic",
        context_length=sizes.context,
        prediction_length=sizes.horizon,
        batch_size=16,
        eval_batch_size=16,
        num_batches_per_epoch=sizes.train_batches,
        synthetic=SyntheticOptions(
            num_series=sizes.series,
            length=sizes.context + sizes.horizon * (sizes.test_windows + 8) + 200,
            num_test_windows=sizes.test_windows,
        ),
    )
    dm.setup("fit")
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    rows = []
    for family, (cls, kwargs) in _families(dm).items():
        for precision in precisions:
            torch.manual_seed(0)
            forecaster = cls(
                dm.target_dim, dm.context_length, dm.prediction_length, dm.freq,
                dm.num_time_features, **kwargs,
            )  # fmt: skip
            module = ForecastModule(forecaster, num_samples=20, val_num_samples=0,
                                    metrics=["crps", "crps_sum"])  # fmt: skip
            trainer = pl.Trainer(
                accelerator=accelerator, devices=1, precision=precision, max_epochs=1,
                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, limit_val_batches=0,
            )  # fmt: skip
            start = time.perf_counter()
            trainer.fit(module, dm)
            _sync(device)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            result = trainer.test(module, dm, verbose=False)[0]
            _sync(device)
            test_s = time.perf_counter() - start
            if not math.isfinite(result["test/crps"]):
                raise RuntimeError(f"{family} ({precision}): test/crps is {result['test/crps']}")
            shape = f"{sizes.train_batches} batches of 16 / {len(dm.split.test_starts)} windows"
            rows.append(["epoch + test", family, shape, precision,
                         f"{fit_s:.2f} + {test_s:.2f}", f"crps {result['test/crps']:.5f}"])  # fmt: skip
    return rows


def render(rows: list[list[str]], device: torch.device, tiny: bool) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    head = (
        f"Device check on {device.type} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{'tiny smoke sizes' if tiny else 'full sizes'}, torch threads "
        f"{torch.get_num_threads()}.\n\n"
        "| item | what | size | precision | seconds | peak memory / result |\n"
        "|---|---|---|---|---|---|\n"
    )
    return head + "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="smoke sizes (CI on CPU)")
    parser.add_argument("--out", type=Path, default=None, help="write the table here too")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    device = torch.device(args.device)
    sizes = TINY if args.tiny else FULL
    mixed = "16-mixed" if device.type == "cuda" else "bf16-mixed"
    warnings.filterwarnings("ignore")
    rows = metric_rows(sizes, device) + gls_rows(sizes, device)
    rows += model_rows(sizes, device, ["32-true", mixed])
    table = render(rows, device, args.tiny)
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
