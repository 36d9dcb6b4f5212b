"""``probforecast`` command line: a LightningCLI with data facts linked into the forecaster.

probforecast fit --config configs/quickstart.yaml
probforecast test --config configs/quickstart.yaml --ckpt_path best
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from probforecast.callbacks import (
    BEST_CRPS_CHECKPOINT,
    ForecastCheckpoint,
    ForecastPlot,
    ModelViews,
    SamplesWriter,
    SeriesMetricsTable,
    SystemMetrics,
    resolve_best,
)
from probforecast.data.datamodule import ForecastDataModule
from probforecast.data.errors import DataError
from probforecast.models.base import DATA_FACTS
from probforecast.models.module import ForecastModule
from probforecast.utils.checkpoint_meta import check_checkpoint_file
from probforecast.utils.numerics import NonFiniteError

log = logging.getLogger("probforecast")

LINKED_DATA_FACTS = DATA_FACTS  # linked from data.* into model.forecaster.init_args.*
DEFAULT_ROOT = "runs/default"


class LogConfigCallback(SaveConfigCallback):
    """Writes ``config.yaml`` to the run directory and the whole resolved config to every logger
    (W&B run config, CSV ``hparams.yaml``), so a run records exactly what produced it."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        resolved = self.config.as_dict()
        resolved.pop("config", None)
        init_args = resolved.get("model", {}).get("forecaster", {}).get("init_args")
        if init_args is not None and trainer.datamodule is not None:
            # linked at instantiation, so absent from the parsed config: record the values used
            for fact in LINKED_DATA_FACTS:
                init_args[fact] = getattr(trainer.datamodule, fact)
        for logger in trainer.loggers:
            logger.log_hyperparams({"cli": resolved})


#: CLI overrides for scripted runs: no logger, progress bar or model summary.
QUIET_TRAINER_ARGS: tuple[str, ...] = (
    "--trainer.logger",
    "false",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
)


class ProbForecastCLI(LightningCLI):
    """LightningCLI for ``ForecastModule`` + ``ForecastDataModule``.

    - data facts (target_dim, context/prediction length, freq, number of time features) are
      linked from the DataModule into ``model.forecaster``;
    - checkpoints go to ``<default_root_dir>/checkpoints`` (monitor ``val/crps``, ``last.ckpt``
      kept), so ``--ckpt_path best|last`` works in a later process;
    - the logger (W&B offline by default, or CSV) writes inside ``default_root_dir``.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", LogConfigCallback)
        kwargs.setdefault(
            "trainer_defaults",
            {
                "default_root_dir": DEFAULT_ROOT,
                "max_epochs": 10,
                "logger": {
                    "class_path": "probforecast.loggers.WandbLogger",
                    "init_args": {"project": "probforecast"},
                },
            },
        )
        super().__init__(ForecastModule, ForecastDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        for fact in LINKED_DATA_FACTS:
            parser.link_arguments(
                f"data.{fact}", f"model.forecaster.init_args.{fact}", apply_on="instantiate"
            )
        parser.add_lightning_class_args(ForecastCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in BEST_CRPS_CHECKPOINT.items()})
        parser.add_lightning_class_args(ForecastPlot, "forecast_plot")
        parser.add_lightning_class_args(SamplesWriter, "prediction_writer")
        parser.add_lightning_class_args(ModelViews, "model_views")
        parser.add_lightning_class_args(SystemMetrics, "system_metrics")
        parser.add_lightning_class_args(SeriesMetricsTable, "series_metrics")
        # the module tracks per-series metrics only when the table is logged
        parser.link_arguments("series_metrics.enabled", "model.series_metrics", apply_on="parse")

    # ------------------------------------------------------------------ config fix-ups
    def _parse_ckpt_path(self) -> None:
        """Lightning reads the checkpoint's hyperparameters here; first make sure the file is
        a checkpoint that loads with ``weights_only=True`` (else one clear ``DataError``)."""
        sub = self.config.get("subcommand")
        ckpt = self.config[sub].get("ckpt_path") if sub else None
        if ckpt and Path(ckpt).is_file():
            check_checkpoint_file(ckpt)
        super()._parse_ckpt_path()

    def _subconfig(self):
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        config = self._subconfig()
        root = Path(config.trainer.default_root_dir or DEFAULT_ROOT)
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(root / "checkpoints")
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init = getattr(logger, "init_args", None)
            if init is not None and "save_dir" in init and init.save_dir in (None, ".", "./"):
                init.save_dir = str(root)
        root.mkdir(parents=True, exist_ok=True)
        _add_default_progress_bar(config.trainer)
        ckpt = config.get("ckpt_path")
        if self.subcommand in ("test", "validate", "predict") and ckpt == "best":
            best = resolve_best(config.checkpoint.dirpath)
            if best is None:
                raise DataError(
                    f"--ckpt_path best: no best checkpoint recorded in {config.checkpoint.dirpath}; "
                    "run `probforecast fit` with the same config first, or pass a checkpoint file"
                )
            config.ckpt_path = best
        elif ckpt is not None and ckpt not in ("last", "hpc"):
            check_checkpoint_file(ckpt)  # not ours / unreadable: one line, before any work

    def after_fit(self) -> None:
        self._report("fit")

    def after_test(self) -> None:
        self._report("test")

    def after_predict(self) -> None:
        self._report("predict")

    def _report(self, stage: str) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        lines = [f"[probforecast] {stage} finished; run directory: {trainer.default_root_dir}"]
        ckpt = trainer.checkpoint_callback
        if stage == "fit" and isinstance(ckpt, ModelCheckpoint):
            lines.append(
                f"  best checkpoint: {ckpt.best_model_path} ({ckpt.monitor}={_fmt(ckpt.best_model_score)})"
            )
            lines.append(f"  last checkpoint: {ckpt.last_model_path}")
        if stage in ("test", "predict"):
            lines.append(f"  checkpoint used: {trainer.ckpt_path}")
        # set on every trainer by Lightning's callback connector, not declared on the class
        callbacks: list[Callback] = getattr(trainer, "callbacks", [])
        for cb in callbacks:
            if isinstance(cb, SamplesWriter) and stage == "predict" and cb.path is not None:
                lines.append(f"  samples: {cb.path}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                run_dir = Path(logger.experiment.dir).parent
                lines.append(f"  W&B run ({os.environ.get('WANDB_MODE', 'online')}): {run_dir}")
                if os.environ.get("WANDB_MODE") == "offline":
                    lines.append(f"    sync later with: wandb sync {run_dir}")
            elif isinstance(logger, CSVLogger):
                lines.append(f"  CSV metrics: {Path(logger.log_dir) / 'metrics.csv'}")
        for cb in callbacks:
            if isinstance(cb, ForecastPlot):
                for plot_stage, path in cb.last_paths.items():
                    lines.append(f"  forecast plot ({plot_stage}): {path}")
            if isinstance(cb, ModelViews) and cb.last_paths:
                lines.append(
                    f"  model views: {len(cb.last_paths)} in {Path(trainer.default_root_dir) / 'plots'}"
                )
            if isinstance(cb, SeriesMetricsTable) and cb.last_path is not None:
                lines.append(f"  per-series test metrics: {cb.last_path}")
        sys.stdout.write("\n".join(lines) + "\n")


def _add_default_progress_bar(trainer_config) -> None:
    """Rich bars with samples/s (``ThroughputProgressBar``) unless progress bars are off or the
    config names its own progress bar callback."""
    if trainer_config.get("enable_progress_bar") is False:
        return
    callbacks = trainer_config.get("callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    if any("ProgressBar" in str(getattr(c, "class_path", type(c).__name__)) for c in callbacks):
        return
    bar = Namespace(
        class_path="probforecast.callbacks.ThroughputProgressBar", init_args=Namespace()
    )
    trainer_config.callbacks = [*callbacks, bar]


def _fmt(value) -> str:
    return "n/a" if value is None else f"{float(value):.5f}"


class _DropLitLoggerTip(logging.Filter):
    """Lightning advertises LitLogger on every run ("Tip: ... try installing litlogger")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage().lower()


def _quiet_third_party() -> None:
    """Hide third-party messages a user cannot act on; real warnings stay visible."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="gluonts")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Period.*freq.*deprecated.*")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*Period.*")
    # Lightning's own pytree helper calls an API torch deprecated (lightning/utilities/_pytree.py)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropLitLoggerTip) for f in rank_zero.filters):
        rank_zero.addFilter(_DropLitLoggerTip())


def main(args: list[str] | None = None) -> None:
    """Console entry point: offline W&B unless ``WANDB_MODE`` is set; user errors print one line."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    if os.environ.get("PROBFORECAST_FLUSH_DENORMAL", "1") == "1":
        # float32 Cholesky on CPU slows down by up to 10x on subnormal numbers (docs/bench_gls_likelihood.md)
        torch.set_flush_denormal(True)
    _quiet_third_party()
    # our INFO messages; third parties (gluonts logs every dataset grouping at INFO) from WARNING
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("probforecast").setLevel(logging.INFO)
    try:
        ProbForecastCLI(args=args)
    except DataError as err:
        sys.stderr.write(f"probforecast: error: {err}\n")
        raise SystemExit(2) from None
    except NonFiniteError as err:
        sys.stderr.write(f"probforecast: numerical error: {err}\n")
        raise SystemExit(3) from None
