"""Logger-agnostic figures and tables: PNG/CSV files in the run directory, W&B media when the
logger is W&B. Shared by the plotting callbacks (``ForecastPlot``, ``ModelViews``,
``SeriesMetricsTable``)."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import lightning.pytorch as pl
import matplotlib

if "ipykernel" not in sys.modules:  # CLI and scripts draw off-screen; notebooks keep theirs
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import WandbLogger  # noqa: E402

from probforecast.data.batch import ForecastBatch, collate_windows  # noqa: E402

log = logging.getLogger(__name__)


def trainer_datamodule(trainer: pl.Trainer) -> pl.LightningDataModule | None:
    """``trainer.datamodule``: Lightning sets it on every trainer (``None`` without one) but
    does not declare it on the class."""
    return getattr(trainer, "datamodule", None)


def run_folder(trainer: pl.Trainer, name: str) -> Path:
    """``<default_root_dir>/<name>``, created."""
    folder = Path(trainer.default_root_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stage_suffix(trainer: pl.Trainer, stage: str) -> str:
    """``_epoch007`` for validation figures (one per epoch), empty for test."""
    return f"_epoch{trainer.current_epoch:03d}" if stage == "val" else ""


def log_figure(trainer: pl.Trainer, figure, key: str, filename: str) -> Path:
    """Save ``figure`` as ``<default_root_dir>/plots/<filename>`` and log it as the W&B image
    ``key`` when a W&B logger is attached; closes the figure and returns the PNG path."""
    path = run_folder(trainer, "plots") / filename
    figure.savefig(path, dpi=90)
    plt.close(figure)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
    return path


def log_table(
    trainer: pl.Trainer, key: str, columns: list[str], rows: list[list], filename: str
) -> Path:
    """Write ``rows`` as ``<default_root_dir>/tables/<filename>`` (CSV) and log them as the W&B
    table ``key`` when a W&B logger is attached; returns the CSV path."""
    path = run_folder(trainer, "tables") / filename
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=columns, data=rows, step=trainer.global_step)
    return path


def fixed_window(
    trainer: pl.Trainer, stage: str, window_index: int, device: torch.device
) -> ForecastBatch | None:
    """The batch of one evaluation window (``window_index`` modulo the number of windows) of
    the val/test split, the same window at every call; ``None`` without windows or data module."""
    datamodule = trainer_datamodule(trainer)
    if datamodule is None:
        return None
    loader = datamodule.val_dataloader() if stage == "val" else datamodule.test_dataloader()
    dataset = loader.dataset
    if len(dataset) == 0:
        return None
    return collate_windows([dataset[window_index % len(dataset)]]).to(device)
