"""A training loader whose every epoch is a function of the seed and the epoch number alone.

``ForecastDataModule.train_dataloader`` draws ``batch_size * num_batches_per_epoch`` window
indices per epoch from a ``RandomSampler(replacement=True)`` whose generator is seeded once and
then carried from epoch to epoch. A run resumed from a checkpoint builds a fresh loader, so
without help it would replay epoch 0's windows, and a run resumed mid-epoch would start the
epoch over. :func:`make_resumable` rebuilds that loader so that

- epoch ``e`` yields exactly the indices the uninterrupted ``RandomSampler`` yields in its
  ``e``-th pass (the generator is re-seeded and ``e`` passes are drawn and discarded: a few
  thousand integers per epoch, microseconds), and
- an iterator started in the middle of epoch ``e`` (after ``k`` batches) skips those ``k``
  batches (their indices only: no window is sliced for them).

``(e, k)`` is read from the trainer's loop progress when the iterator starts, so the loader
is correct whichever way Lightning restarts (epoch-end or step checkpoints, one or several
processes). Under a distributed strategy Lightning wraps the sampler in its own distributed
sampler; the epoch is then still right, and the skip is applied to the per-rank batches.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator

from torch import Generator
from torch.utils.data import DataLoader, RandomSampler, Sampler

log = logging.getLogger(__name__)

Progress = Callable[[], tuple[int, int]]  # -> (epoch, batches already done in that epoch)


def fit_progress(trainer) -> Progress:
    """``(epoch, completed batches of that epoch)`` from a Lightning trainer's fit loop.

    At the start of an epoch the batch counters are zero; on a restart they hold the restored
    values, where ``processed`` counts the batch whose ``on_train_batch_end`` saved the
    checkpoint. An epoch whose batches are all done has only its end hooks left, so the
    next batches drawn belong to the next epoch.
    """

    def progress() -> tuple[int, int]:
        fit = trainer.fit_loop
        epoch = fit.epoch_progress.current.processed
        done = fit.epoch_loop.batch_progress.current.processed
        total = trainer.num_training_batches
        if isinstance(total, int | float) and total != float("inf") and done >= total > 0:
            return epoch + 1, 0
        return epoch, done

    return progress


class _EpochSampler(Sampler[int]):
    """A sampler whose indices depend on the epoch: read from ``progress`` when one is attached
    (see :func:`make_resumable`), else from ``set_epoch``, which Lightning calls every epoch."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress
        self.epoch = 0  # used when no progress source is attached (set_epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def current_epoch(self) -> int:
        return self.progress()[0] if self.progress is not None else self.epoch


class EpochReplaySampler(_EpochSampler):
    """The index stream of ``RandomSampler(range(size), replacement=True, num_samples,
    generator=Generator().manual_seed(seed))`` for the epoch that ``progress`` names.

    Epoch ``e`` = the ``e``-th pass of that sampler over a generator seeded once, so an
    uninterrupted run sees the same windows as before, and a resumed one the same as it would
    have seen.
    """

    def __init__(self, size: int, num_samples: int, seed: int, progress: Progress | None = None):
        super().__init__(progress)
        self.size, self.num_samples, self.seed = size, num_samples, seed

    def indices(self, epoch: int) -> list[int]:
        """All ``num_samples`` indices of epoch ``epoch``."""
        gen = Generator().manual_seed(self.seed)
        sampler = RandomSampler(
            range(self.size), replacement=True, num_samples=self.num_samples, generator=gen
        )
        for _ in range(epoch):
            for _ in sampler:
                pass
        return list(sampler)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices(self.current_epoch()))

    def __len__(self) -> int:
        return self.num_samples


class EpochIndexSampler(_EpochSampler):
    """Indices ``e M, e M + 1, ..., e M + M - 1`` for epoch ``e`` (``M = epoch_len``), in order.

    For datasets whose item ``epoch * M + i`` is window ``i`` of epoch ``epoch`` (e.g.
    ``SyntheticWindows``).
    """

    def __init__(self, epoch_len: int, progress: Progress | None = None):
        if epoch_len < 1:
            raise ValueError(f"epoch_len must be >= 1; got {epoch_len}")
        super().__init__(progress)
        self.epoch_len = epoch_len

    def __iter__(self) -> Iterator[int]:
        first = self.current_epoch() * self.epoch_len
        return iter(range(first, first + self.epoch_len))

    def __len__(self) -> int:
        return self.epoch_len


class ResumableLoader(DataLoader):
    """``DataLoader`` that starts an iterator at the batch the trainer has reached.

    ``progress`` (set by :func:`make_resumable`) gives ``(epoch, batches done)``; the first
    ``batches done`` batches of the batch sampler are skipped without loading them. The
    ``state_dict`` records the same pair so Lightning treats the loader as resumable.
    """

    def __init__(self, *args, progress: Progress | None = None, **kwargs) -> None:
        self._skip = 0
        super().__init__(*args, **kwargs)
        self.progress = progress
        self._loaded: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        epoch, done = self.progress() if self.progress is not None else (0, 0)
        return {"epoch": int(epoch), "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._loaded = (int(state["epoch"]), int(state["batches_done"]))

    def __iter__(self):
        epoch, skip = self.progress() if self.progress is not None else (0, 0)
        if self._loaded is not None and self._loaded != (epoch, skip):
            log.warning(
                "training loader state %s differs from the trainer's progress %s; following "
                "the trainer",
                self._loaded,
                (epoch, skip),
            )
        self._loaded = None
        if skip == 0 or self.batch_sampler is None:
            return super().__iter__()
        log.info("resuming epoch %d after %d batches", epoch, skip)
        self._skip = skip
        try:
            return super().__iter__()  # the iterator reads ``_index_sampler`` once, here
        finally:
            self._skip = 0

    @property
    def _index_sampler(self):
        sampler = super()._index_sampler
        skip = getattr(self, "_skip", 0)
        return _Skipped(sampler, skip) if skip else sampler


class _Skipped:
    """``sampler`` without its first ``skip`` items (batches of indices: nothing is loaded)."""

    def __init__(self, sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


def make_resumable(loader: DataLoader, progress: Progress) -> DataLoader:
    """Rebuild a training loader with a ``RandomSampler(replacement=True)`` and a seeded
    generator as a :class:`ResumableLoader` over :class:`EpochReplaySampler`; an
    :class:`EpochIndexSampler` reads its epoch from ``progress``; any other loader gets only the
    batch skip (its sampler's own epoch handling is kept)."""
    if isinstance(loader, ResumableLoader):
        return loader
    sampler = loader.sampler
    if isinstance(sampler, RandomSampler) and sampler.replacement and sampler.generator is not None:
        sampler = EpochReplaySampler(
            len(sampler.data_source),
            sampler.num_samples,
            sampler.generator.initial_seed(),
            progress,
        )
    elif isinstance(sampler, EpochIndexSampler):
        sampler = EpochIndexSampler(sampler.epoch_len, progress)
    elif not isinstance(sampler, Sampler):
        return loader
    return ResumableLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        persistent_workers=loader.persistent_workers,
        progress=progress,
    )
