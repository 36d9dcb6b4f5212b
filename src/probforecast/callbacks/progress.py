"""Rich progress bars with a samples/s column: training windows per second during fit, sample
paths per second during validation, test and predict (sampling dominates there, and is long
for diffusion models)."""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import ProgressColumn
from rich.text import Text


class SamplesPerSecondColumn(ProgressColumn):
    """Renders the owning bar's smoothed rate of its task (empty until the first batch)."""

    def __init__(self, bar: ThroughputProgressBar, style: str = "cyan") -> None:
        super().__init__()
        self.bar, self.style = bar, style

    def render(self, task) -> Text:
        rate = self.bar.rates.get(task.id)
        return Text("" if rate is None else f"{rate:,.0f} samples/s", style=self.style)


class ThroughputProgressBar(RichProgressBar):
    """``RichProgressBar`` plus ``samples/s``: windows per second while training, sample paths
    (``windows x num_samples``) per second while evaluating or predicting; an exponential
    moving average over batches (weight ``smoothing`` on the newest).

    Args:
        refresh_rate: refresh every n batches. leave: keep finished bars.
        smoothing: EMA weight of the newest batch in ``(0, 1]``.
    """

    def __init__(self, refresh_rate: int = 1, leave: bool = False, smoothing: float = 0.3) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1]; got {smoothing}")
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.smoothing = smoothing
        self.rates: dict[object, float] = {}
        self._t0 = 0.0

    def configure_columns(self, trainer) -> list:
        return [*super().configure_columns(trainer), SamplesPerSecondColumn(self)]

    def _tick(self) -> None:
        self._t0 = time.perf_counter()

    def _rate(self, task_id, items: int) -> None:
        if task_id is None:
            return
        seconds = max(time.perf_counter() - self._t0, 1e-9)
        new = items / seconds
        old = self.rates.get(task_id)
        self.rates[task_id] = new if old is None else old + self.smoothing * (new - old)

    def _paths(self, pl_module, batch, stage: str) -> int:
        samples = getattr(pl_module, "val_num_samples" if stage == "val" else "num_samples", 1)
        return int(getattr(batch, "batch_size", 1)) * int(samples)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._tick()
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._rate(self.train_progress_bar_id, int(getattr(batch, "batch_size", 1)))
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._tick()

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        task = (
            self.val_sanity_progress_bar_id if trainer.sanity_checking else self.val_progress_bar_id
        )
        self._rate(task, self._paths(pl_module, batch, "val"))
        super().on_validation_batch_end(
            trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
        )

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._tick()

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._rate(self.test_progress_bar_id, self._paths(pl_module, batch, "test"))
        super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        super().on_predict_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._tick()

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._rate(self.predict_progress_bar_id, self._paths(pl_module, batch, "predict"))
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
