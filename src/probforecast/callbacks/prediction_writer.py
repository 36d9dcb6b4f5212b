"""Write ``predict`` outputs (raw-scale samples with their window starts) to one file."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from probforecast.callbacks.figures import trainer_datamodule


class SamplesWriter(BasePredictionWriter):
    """At the end of ``predict``, save ``{"samples": [W, S, Q, N], "window_start": [W],
    "series_ids": [W, N], "timestamps": [W] (str, first horizon step)}`` to
    ``<default_root_dir>/predictions.pt`` (atomically: temp file + rename).

    Args:
        filename: file name inside ``default_root_dir``.
    """

    def __init__(self, filename: str = "predictions.pt"):
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module, predictions, batch_indices
    ) -> None:
        if not predictions:
            return
        if isinstance(predictions[0], list):  # several dataloaders
            predictions = [p for loader in predictions for p in loader]
        out: dict[str, Tensor | list[str]] = {
            key: torch.cat([p[key].cpu() for p in predictions]) for key in predictions[0]
        }
        datamodule = trainer_datamodule(trainer)
        if datamodule is not None and hasattr(datamodule, "timestamps"):
            out["timestamps"] = [
                str(datamodule.timestamps(int(s), 1)[0]) for s in out["window_start"]
            ]
        rank = f".rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        self.path = Path(trainer.default_root_dir) / (self.filename + rank)
        tmp = self.path.with_suffix(".tmp")
        torch.save(out, tmp)
        os.replace(tmp, self.path)
