"""Checkpointing that a later process can find and a crash cannot corrupt.

Every checkpoint (``last.ckpt``, the best one, step-interval ones) is written to a hidden
temporary file in the same directory, fsynced and renamed over its target, so a process killed
during a write (SIGKILL, power loss) leaves the previous file intact; ``best.json`` beside the
checkpoints records the best path for ``--ckpt_path best`` in a new process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from probforecast.utils.atomic import atomic_replace, atomic_write

BEST_FILE = "best.json"

#: Checkpointing of every training run, CLI and API alike: the lowest ``val/crps`` and
#: ``last.ckpt``, named by epoch and score.
BEST_CRPS_CHECKPOINT: dict[str, Any] = {
    "monitor": "val/crps",
    "mode": "min",
    "save_last": True,
    "save_top_k": 1,
    "filename": "epoch{epoch:03d}-crps{val/crps:.5f}",
    "auto_insert_metric_name": False,
    "enable_version_counter": False,
}


def temporary_path(filepath: str) -> str:
    """Hidden sibling of ``filepath`` (not ``*.ckpt``, so ``--ckpt_path last`` never picks it)."""
    path = Path(filepath)
    return str(path.with_name(f".{path.name}.tmp-{os.getpid()}"))


class ForecastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with atomic writes, plus ``<dirpath>/best.json`` (best path and
    score) written atomically after every save, so ``--ckpt_path best`` works in a new process.

    For exact mid-epoch resumption (``--ckpt_path last`` after a crash) set
    ``every_n_train_steps``: ``last.ckpt`` is then refreshed every that many steps, and the
    training loader replays the rest of the interrupted epoch (see ``utils/resumable.py``).
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = self._should_save_on_train_epoch_end(trainer)
        self._then_refresh_last(trainer, due, super().on_train_epoch_end, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_save_on_train_epoch_end(trainer)
        self._then_refresh_last(trainer, due, super().on_validation_end, pl_module)

    def _then_refresh_last(self, trainer: pl.Trainer, due: bool, hook, pl_module) -> None:
        """Run Lightning's ``hook``, then make sure ``last.ckpt`` holds this epoch: Lightning
        writes it only when a top-k checkpoint was written in the same step, so with
        ``save_top_k=1`` a crash after ``patience`` epochs without improvement would resume
        from the best epoch and lose every epoch since."""
        due = due and bool(self.save_last) and not self._should_skip_saving_checkpoint(trainer)
        hook(trainer, pl_module)
        if due and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        tmp = temporary_path(filepath)
        trainer.save_checkpoint(tmp, self.save_weights_only)  # rank 0 writes; all ranks barrier
        if trainer.is_global_zero:
            atomic_replace(tmp, filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
            if self.dirpath:
                self._write_best(self.dirpath)

    def _write_best(self, dirpath: str | Path) -> None:
        score = self.best_model_score
        info = {
            "best_model_path": self.best_model_path,
            "best_model_score": None if score is None else float(score),
            "monitor": self.monitor,
            "last_model_path": self.last_model_path,
        }
        with atomic_write(Path(dirpath) / BEST_FILE, "w") as fh:
            fh.write(json.dumps(info, indent=1))


def resolve_best(dirpath: str | os.PathLike) -> str | None:
    """The best checkpoint recorded in ``<dirpath>/best.json``, or ``None``."""
    path = Path(dirpath) / BEST_FILE
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    best = info.get("best_model_path") or info.get("last_model_path")
    return best if best and Path(best).is_file() else None
