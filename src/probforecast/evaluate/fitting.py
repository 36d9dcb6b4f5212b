"""Fit one run through LightningCLI and reload its best checkpoint.

A run is what ``probforecast fit`` does with the same arguments (configs, overrides, seed):
the benchmark scripts and ``python -m probforecast.evaluate`` build it with
``ProbForecastCLI(args, run=False)``, so every callback, protocol option and config check of
the command line applies. The best checkpoint (the monitored score's, recorded by the
checkpoint callback) is then rebuilt by :meth:`ForecastModule.load`, i.e. from the checkpoint
alone, as a user would reload it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probforecast.callbacks.checkpoint import BEST_FILE
from probforecast.cli import QUIET_TRAINER_ARGS, ProbForecastCLI
from probforecast.data.datamodule import ForecastDataModule
from probforecast.models.checkpoint_io import module_from_checkpoint
from probforecast.models.module import ForecastModule
from probforecast.utils.checkpoint_meta import read_checkpoint

QUIET_RUN_ARGS: tuple[str, ...] = (
    *QUIET_TRAINER_ARGS,
    "--forecast_plot.every_n_val_epochs",
    "0",
    "--model_views.every_n_val_epochs",
    "0",
)
"""No logger, progress bar, model summary or figures: what a benchmark run passes."""


@dataclass
class FittedRun:
    """A finished run: the best checkpoint reloaded, its data and the fit figures.

    Attributes:
        module: the best checkpoint rebuilt by ``ForecastModule.load`` (the final weights
            when no checkpoint was written, e.g. a budget that ended before any validation).
        datamodule: the run's data module (``setup`` done for fitting, or for testing when
            reloaded).
        cli: the ``ProbForecastCLI`` that built the run (its resolved ``config``).
        best_path: the best checkpoint, or ``None``.
        fit: ``fit_seconds``, ``steps``, ``epochs``, ``best_epoch`` (1-based; ``None``
            without a checkpoint) and ``best_score`` (the monitored value, or ``None``).
    """

    module: ForecastModule
    datamodule: ForecastDataModule
    cli: ProbForecastCLI
    best_path: str | None
    fit: dict[str, Any] = field(default_factory=dict)


def build_cli(cli_args: Sequence[str]) -> ProbForecastCLI:
    """``ProbForecastCLI`` parsed from ``cli_args`` (as after ``probforecast fit``), not run."""
    return ProbForecastCLI(args=list(cli_args), run=False)


def fit_run(cli_args: Sequence[str], *, use_config_forecaster: bool = False) -> FittedRun:
    """Fit the run that ``cli_args`` describe, then reload its best checkpoint.

    Args:
        cli_args: ``probforecast fit`` arguments (``--config`` files, ``--key value``
            overrides, ``--seed_everything``, ``--trainer.default_root_dir``, ...).
        use_config_forecaster: rebuild the checkpoint's weights into the config's forecaster
            instead of the one the checkpoint's spec describes (for sampling-only settings
            that an override changed after fitting; see :func:`reload_run`).
    """
    cli = build_cli(cli_args)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    fit_seconds = time.perf_counter() - start
    callback = cli.trainer.checkpoint_callback
    best_path = getattr(callback, "best_model_path", "") or None
    score = getattr(callback, "best_model_score", None)
    fit = {
        "fit_seconds": fit_seconds,
        "steps": int(cli.trainer.global_step),
        "epochs": int(cli.trainer.current_epoch),
        "best_score": None if score is None else float(score),
        "best_epoch": None,
    }
    module = cli.model
    if best_path:
        module, fit["best_epoch"] = _reload(cli, best_path, use_config_forecaster)
    return FittedRun(module, cli.datamodule, cli, best_path, fit)


def reload_run(
    run_dir: str | os.PathLike,
    cli_args: Sequence[str] | None = None,
    *,
    use_config_forecaster: bool = False,
) -> FittedRun:
    """A finished run rebuilt from its folder, without fitting again.

    ``run_dir`` is the run's ``trainer.default_root_dir``: ``checkpoints/best.json`` names
    its best checkpoint; the data module comes from ``cli_args`` when given (the current
    configs, e.g. to re-test under a sampling-only change, with ``use_config_forecaster``),
    else from the run's own ``config.yaml`` (written by the CLI when fitting starts). The fit
    figures are read back from the checkpoints: ``steps`` and ``epochs`` of the last
    checkpoint (when kept), ``fit_seconds`` as the time between ``config.yaml`` and it, the
    best score and epoch.

    Raises:
        FileNotFoundError: the folder lacks ``config.yaml`` or a recorded best checkpoint.
    """
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    best_file = run_dir / "checkpoints" / BEST_FILE
    for needed in (config, best_file):
        if not needed.is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished run: {needed} is missing")
    if cli_args is None:
        cli_args = ["--config", str(config), *QUIET_TRAINER_ARGS]
    cli = build_cli(cli_args)
    best = json.loads(best_file.read_text())
    best_path = best["best_model_path"]
    cli.datamodule.setup("test")
    module, best_epoch = _reload(cli, best_path, use_config_forecaster)
    fit: dict[str, Any] = {"best_score": best["best_model_score"], "best_epoch": best_epoch}
    last = Path(best.get("last_model_path") or run_dir / "checkpoints" / "last.ckpt")
    if last.is_file():
        state = read_checkpoint(last)
        fit.update(
            steps=int(state["global_step"]),
            epochs=int(state["epoch"]) + 1,
            fit_seconds=last.stat().st_mtime - config.stat().st_mtime,
        )
    return FittedRun(module, cli.datamodule, cli, best_path, fit)


def _reload(
    cli: ProbForecastCLI, path: str, use_config_forecaster: bool
) -> tuple[ForecastModule, int]:
    """The module rebuilt from checkpoint ``path`` (read once) and the 1-based epoch at which
    it was saved."""
    device = cli.model.device
    checkpoint = read_checkpoint(path, device)
    module = module_from_checkpoint(
        ForecastModule,
        checkpoint,
        Path(path),
        forecaster=cli.model.forecaster if use_config_forecaster else None,
        map_location=device,
    )
    return module, int(checkpoint["epoch"]) + 1
