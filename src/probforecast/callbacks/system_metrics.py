"""System metrics of a run: training throughput, evaluation (sampling) time and speed, peak
memory, logged as ``system/*`` scalars to every logger (W&B charts them over epochs)."""

from __future__ import annotations

import resource
import sys
import time

import lightning.pytorch as pl
import torch


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: ``torch.cuda.max_memory_allocated`` on CUDA, else the process's peak
    resident set size (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


class SystemMetrics(pl.Callback):
    """Per epoch (fit) and per evaluation run (val/test):

    - ``system/train_windows_per_s``: training windows / wall time of the epoch's batches;
    - ``system/{val,test}_seconds_per_batch``: wall time of an evaluation step (sampling,
      inverse scaling, metric updates) averaged over the epoch's batches;
    - ``system/{val,test}_paths_per_s``: sample paths drawn per second, ``B * S / time``;
    - ``system/peak_memory_mb``: see ``peak_memory_mb``.

    Args:
        sync_cuda: synchronise CUDA before reading the clock (exact GPU timings).
    """

    def __init__(self, sync_cuda: bool = True) -> None:
        self.sync_cuda = sync_cuda
        # per stage (validation runs inside the training epoch): start, seconds, items, batches
        self._state: dict[str, list[float]] = {}

    def _reset(self, stage: str) -> None:
        self._state[stage] = [0.0, 0.0, 0, 0]

    def _clock(self, module: pl.LightningModule) -> float:
        if self.sync_cuda and module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def _start(self, module: pl.LightningModule, stage: str) -> None:
        self._state.setdefault(stage, [0.0, 0.0, 0, 0])[0] = self._clock(module)

    def _stop(self, module: pl.LightningModule, stage: str, items: int) -> None:
        state = self._state[stage]
        state[1] += self._clock(module) - state[0]
        state[2] += items
        state[3] += 1

    def _log(self, module: pl.LightningModule, values: dict[str, float]) -> None:
        values["system/peak_memory_mb"] = peak_memory_mb(module.device)
        for key, value in values.items():
            module.log(key, float(value), on_step=False, on_epoch=True, rank_zero_only=True)

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._reset("train")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start(pl_module, "train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stop(pl_module, "train", batch.batch_size)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _, seconds, items, _ = self._state.get("train", [0.0, 0.0, 0, 0])
        if seconds > 0:
            self._log(pl_module, {"system/train_windows_per_s": items / seconds})

    # ------------------------------------------------------------------ evaluation
    def _eval_end(self, pl_module, batch, stage: str) -> None:
        samples = pl_module.val_num_samples if stage == "val" else pl_module.num_samples
        self._stop(pl_module, stage, batch.batch_size * samples)

    def _eval_epoch_end(self, trainer, pl_module, stage: str) -> None:
        _, seconds, items, batches = self._state.get(stage, [0.0, 0.0, 0, 0])
        if batches and seconds > 0 and not trainer.sanity_checking:
            self._log(
                pl_module,
                {
                    f"system/{stage}_seconds_per_batch": seconds / batches,
                    f"system/{stage}_paths_per_s": items / seconds,
                },
            )

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset("val")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._start(pl_module, "val")

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._eval_end(pl_module, batch, "val")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._eval_epoch_end(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._reset("test")

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._start(pl_module, "test")

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._eval_end(pl_module, batch, "test")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._eval_epoch_end(trainer, pl_module, "test")
