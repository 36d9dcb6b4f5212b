"""Score a trained module on its test windows, over several sampling passes.

A *scorer* maps ``(module, datamodule)`` to named scores for one sampling pass. The default,
:func:`module_metrics`, is ``Trainer.test``: the module's own metric collection on the
protocol's test windows, exactly as ``probforecast test`` reports it. Papers that aggregate
differently get their own scorer (:func:`window_mean_scorer`: CRPS, CRPS-sum and energy score
per window, then averaged over windows, as the GLS paper's ``metrics.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from probforecast.data.datamodule import ForecastDataModule
from probforecast.metrics.functional import window_mean_scores
from probforecast.models.module import ForecastModule

Scorer = Callable[[ForecastModule, ForecastDataModule], Mapping[str, float]]
"""One sampling pass: ``(module, datamodule) -> {score name: value}``."""

FIRST_SAMPLE_SEED = 1000
"""Sampling pass ``r`` draws with ``module.sample_seed = FIRST_SAMPLE_SEED + r``."""


def module_metrics(module: ForecastModule, datamodule: ForecastDataModule) -> dict[str, float]:
    """``Trainer.test`` with no logger or callback; keys without the ``test/`` prefix."""
    tester = pl.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[],
        accelerator=module.device.type,
        devices=1,
    )
    (result,) = tester.test(module, datamodule, verbose=False)
    return {key.removeprefix("test/"): float(value) for key, value in result.items()}


def window_mean_scorer(num_samples: int) -> Scorer:
    """A scorer drawing ``num_samples`` paths per test window and returning ``crps``,
    ``crps_sum`` and ``energy_score`` on the raw scale, each computed per window and then
    averaged over all windows (:func:`probforecast.metrics.functional.window_mean_scores`).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}")

    @torch.no_grad()
    def score(module: ForecastModule, datamodule: ForecastDataModule) -> dict[str, float]:
        module.eval()
        per_window: dict[str, list[torch.Tensor]] = {}
        for batch in datamodule.test_dataloader():
            batch = batch.to(module.device)
            samples = batch.unscale(module.draw_samples(batch, num_samples))
            target = batch.unscale(batch.future_target)
            for name, values in window_mean_scores(samples, target, batch.future_observed).items():
                per_window.setdefault(name, []).append(values)
        if not per_window:
            raise ValueError("the test split has no window to score")
        return {name: float(torch.cat(v).mean()) for name, v in per_window.items()}

    return score


def backtest(
    module: ForecastModule,
    datamodule: ForecastDataModule,
    *,
    repeats: int = 1,
    scorer: Scorer = module_metrics,
) -> dict[str, Any]:
    """Scores of ``repeats`` sampling passes, pass ``r`` seeded ``FIRST_SAMPLE_SEED + r``.

    Returns:
        ``{name: mean over passes, name + "_repeat_std": population std over passes (0 for
        one pass), "test_seconds": wall time of all passes, "repeats": repeats}``. The
        module's ``sample_seed`` is restored afterwards.

    Raises:
        ValueError: ``repeats < 1``, or a pass returns a NaN score (named).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    datamodule.setup("test")
    saved_seed = module.sample_seed
    per_pass: dict[str, list[float]] = {}
    start = time.perf_counter()
    try:
        for r in range(repeats):
            module.sample_seed = FIRST_SAMPLE_SEED + r
            for name, value in scorer(module, datamodule).items():
                if value != value:
                    raise ValueError(f"sampling pass {r} scored {name} = NaN")
                per_pass.setdefault(name, []).append(float(value))
    finally:
        module.sample_seed = saved_seed
    out: dict[str, Any] = {name: statistics.fmean(v) for name, v in per_pass.items()}
    out.update({f"{name}_repeat_std": statistics.pstdev(v) for name, v in per_pass.items()})
    out["test_seconds"] = time.perf_counter() - start
    out["repeats"] = repeats
    return out
