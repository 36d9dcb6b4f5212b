"""Checkpointing that a later process can find: ``best.json`` beside the checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

BEST_FILE = "best.json"


class ForecastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also writes ``<dirpath>/best.json`` (best path and score),
    atomically, after every save, so ``--ckpt_path best`` works in a new process."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero and self.dirpath:
            self._write_best()

    def _write_best(self) -> None:
        score = self.best_model_score
        info = {
            "best_model_path": self.best_model_path,
            "best_model_score": None if score is None else float(score),
            "monitor": self.monitor,
            "last_model_path": self.last_model_path,
        }
        path = Path(self.dirpath) / BEST_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, path)


def resolve_best(dirpath: str | os.PathLike) -> str | None:
    """The best checkpoint recorded in ``<dirpath>/best.json``, or ``None``."""
    path = Path(dirpath) / BEST_FILE
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    best = info.get("best_model_path") or info.get("last_model_path")
    return best if best and Path(best).is_file() else None
