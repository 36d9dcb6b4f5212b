"""``ForecastModule``: the one LightningModule; it owns a ``Forecaster`` and never branches on its type."""

from __future__ import annotations

import contextlib
import inspect
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.distributions._cholesky import jitter_counts, reset_jitter_counts
from probforecast.metrics import build_metric_collection
from probforecast.metrics.functional import metric_threads
from probforecast.metrics.series import SeriesMetrics
from probforecast.models.base import Forecaster
from probforecast.models.checkpoint_io import FORECASTER_SPEC_KEY, forecaster_spec, load_module
from probforecast.models.noise import SampleNoise, seeded_global_rng
from probforecast.utils.checkpoint_meta import (
    META_KEY,
    check_compatible,
    forecaster_meta,
    register_safe_globals,
)
from probforecast.utils.numerics import (
    NonFiniteError,
    describe_non_finite,
    non_finite_fields,
    non_finite_parameters,
)

if TYPE_CHECKING:
    from probforecast.data.datamodule import ForecastDataModule

log = logging.getLogger(__name__)
TRAIN_SEED_KEY = "probforecast_train_seed"
register_safe_globals()  # our checkpoints load with torch.load(weights_only=True)


class ForecastModule(pl.LightningModule):
    """Training = ``forecaster.loss``; validation/test = ``num_samples`` draws, inverse scaling,
    torchmetrics collections (sum states, so results do not depend on batch size or processes).

    Args:
        forecaster: any ``Forecaster`` (``class_path`` in YAML).
        optimizer: optimizer factory (default Adam, lr 1e-3).
        lr_scheduler: optional scheduler factory (stepped every epoch; ``ReduceLROnPlateau``
            monitors ``val/crps``).
        num_samples: samples per window at test and predict time.
        val_num_samples: samples per window at validation (default ``num_samples``); sampling is
            the expensive part, so fewer here, with ``trainer.check_val_every_n_epoch`` and
            ``data.max_val_windows``, keeps validation cheap. ``0``: validation computes only
            the loss (``val/loss``, e.g. the validation NLL the GLS paper selects on) and draws
            no samples, so no sample metric is logged at validation; monitor ``val/loss``.
        metrics: names of the metrics to compute (default: the standard collection).
        metrics_on_scaled: compute metrics in scaled space (CW-Gen's protocol) instead of raw.
        interval_level: central-interval level of ``coverage`` / ``interval_width`` /
            ``normalized_interval_width`` (0.9 default; VolDy-VAE's tables use 0.95); the keys
            carry it (``test/coverage_95``).
        metric_aggregation: how the ratio metrics (``crps``, ``crps_quantile``, ``crps_sum``,
            ``nmae``) combine windows: ``pooled`` (default; sum over every window of the
            numerator over the sum of the denominator) or ``window_mean`` (each window's ratio,
            e.g. its CRPS over its own sum ``|y|``, then the mean over windows: ProbTS' evaluator,
            used by VolDy-VAE's tables, and the GLS paper).
        quantile_method: sample quantiles of ``crps_quantile`` / ``crps_sum_quantile``:
            ``linear`` (``np.quantile``, ProbTS) or ``rank`` (GluonTS' evaluator, to reproduce
            a GluonTS table to the digit).
        sample_seed: seeds sampling at validation/test (reproducible evaluation).
        sample_seed_scope: ``"window"`` (default) seeds every window by its start, so a
            window's samples do not depend on which other windows share its batch: results are
            the same for any ``eval_batch_size`` and any number of processes (DDP); one
            ``sample`` call per batch with one generator per window for forecasters with
            ``per_window_noise`` (all built-in ones), one call per window otherwise;
            ``"batch"`` seeds once per batch (reproducible only for the same batching).
        series_metrics: update the per-series metrics (``test_series_metrics``, logged as a
            table by ``SeriesMetricsTable``) in the test step; False skips that second pass
            over the test samples (``test_series_metrics`` is then ``None``). The CLI links it
            to ``--series_metrics.enabled``.

    Training randomness (dropout, the noise of VAE/diffusion losses) is seeded at every step
    from the run's seed (``torch.initial_seed()`` at fit start, kept in the checkpoint), the
    global step and the rank, so a run resumed from any checkpoint draws what the uninterrupted
    run drew, whatever else consumed the global RNG in between (data loader iterators, sanity
    checks).
    """

    def __init__(
        self,
        forecaster: Forecaster,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        num_samples: int = 100,
        val_num_samples: int | None = None,
        metrics: list[str] | None = None,
        metrics_on_scaled: bool = False,
        interval_level: float = 0.9,
        metric_aggregation: Literal["pooled", "window_mean"] = "pooled",
        quantile_method: Literal["linear", "rank"] = "linear",
        sample_seed: int = 0,
        sample_seed_scope: Literal["window", "batch"] = "window",
        series_metrics: bool = True,
    ) -> None:
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 (sample-based metrics); got {num_samples}")
        self.save_hyperparameters(ignore=["forecaster", "optimizer", "lr_scheduler"])
        self.forecaster = forecaster
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.num_samples = num_samples
        if val_num_samples is not None and (val_num_samples == 1 or val_num_samples < 0):
            raise ValueError(
                "val_num_samples must be 0 (validation loss only) or >= 2 (sample-based "
                f"metrics); got {val_num_samples}"
            )
        self.val_num_samples = num_samples if val_num_samples is None else val_num_samples
        self.metrics_on_scaled = metrics_on_scaled
        if sample_seed_scope not in ("window", "batch"):
            raise ValueError(
                f"sample_seed_scope must be 'window' or 'batch'; got {sample_seed_scope!r}"
            )
        self.sample_seed = sample_seed
        self.sample_seed_scope = sample_seed_scope
        self._train_seed: int | None = None
        if not 0.0 < interval_level < 1.0:
            raise ValueError(f"interval_level must lie in (0, 1); got {interval_level}")
        build_metrics = partial(
            build_metric_collection,
            metrics=metrics,
            interval_level=interval_level,
            aggregation=metric_aggregation,
            quantile_method=quantile_method,
        )
        self.val_metrics = build_metrics("val/")
        self.test_metrics = build_metrics("test/")
        self.test_series_metrics: SeriesMetrics | None = (
            SeriesMetrics(forecaster.target_dim, interval_level) if series_metrics else None
        )

    # ------------------------------------------------------------------ training
    def training_step(self, batch: ForecastBatch, batch_idx: int) -> Tensor | None:
        try:
            loss = self.forecaster.loss(batch)
        except ValueError as err:  # e.g. torch.distributions' argument validation on NaN
            if not (non_finite_parameters(self.forecaster) or non_finite_fields(batch)):
                raise
            raise NonFiniteError(
                f"{type(self.forecaster).__name__}.loss failed at epoch {self.current_epoch}, "
                f"batch {batch_idx}, step {self.global_step} (window starts "
                f"{batch.window_start[:4].tolist()}...: {str(err).splitlines()[0][:80]}); "
                f"{describe_non_finite(self.forecaster, batch)}; lower the learning rate or "
                "check the data"
            ) from err
        if not torch.isfinite(loss):
            raise NonFiniteError(
                f"{type(self.forecaster).__name__}.loss returned {loss.item()} at epoch "
                f"{self.current_epoch}, batch {batch_idx}, step {self.global_step} (window starts "
                f"{batch.window_start[:4].tolist()}...); "
                f"{describe_non_finite(self.forecaster, batch)}; lower the learning rate or check "
                "the data"
            )
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch.batch_size,
        )
        if not loss.requires_grad:  # forecasters without trainable weights (e.g. SeasonalNaive)
            return None
        return loss

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return None
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/crps"
        return {"optimizer": optimizer, "lr_scheduler": config}

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        forecaster: Forecaster | None = None,
        datamodule: ForecastDataModule | None = None,
        map_location: str | torch.device = "cpu",
    ) -> Self:
        """The trained module saved at ``path`` (``.ckpt`` of ``probforecast fit``, the API or a
        script), with every saved setting, in eval mode; read with ``weights_only=True``.
        ``forecaster``: an untrained instance, only for checkpoints without a stored spec (see
        ``models/checkpoint_io.py``); ``datamodule``: its data facts, for the same case."""
        return load_module(
            cls, path, forecaster=forecaster, datamodule=datamodule, map_location=map_location
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[META_KEY] = {
            **forecaster_meta(self.forecaster),
            FORECASTER_SPEC_KEY: forecaster_spec(self.forecaster),
        }
        checkpoint[TRAIN_SEED_KEY] = self._train_seed

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_compatible(checkpoint.get(META_KEY), self.forecaster, "being loaded")
        if checkpoint.get(TRAIN_SEED_KEY) is not None:
            self._train_seed = int(checkpoint[TRAIN_SEED_KEY])

    def on_fit_start(self) -> None:
        if self._train_seed is None:  # not restored from a checkpoint
            self._train_seed = torch.initial_seed() % (1 << 31)

    def on_test_epoch_start(self) -> None:
        if self.test_series_metrics is not None:
            self.test_series_metrics.reset()

    def on_train_epoch_start(self) -> None:
        reset_jitter_counts()

    def on_train_epoch_end(self) -> None:
        # Cholesky calls that needed a jitter this epoch (GLS likelihoods); 0 when healthy
        count = float(sum(jitter_counts().values()))
        self.log("train/diagnostics/cholesky_jitter", count, reduce_fx="sum", sync_dist=True)

    def on_train_batch_start(self, batch: ForecastBatch, batch_idx: int) -> None:
        step_seed = (self._train_seed or 0) * 1_000_003 + self.global_step * 101
        torch.manual_seed((step_seed + self.global_rank) % (1 << 63))

    # ------------------------------------------------------------------ sampling
    @contextlib.contextmanager
    def _seeded(self, seed: int):
        """Run the body on a forked global RNG seeded with ``seed`` (the outer stream is kept)."""
        with seeded_global_rng(seed, self.device):
            yield

    def _window_seed(self, start: int | Tensor) -> int:
        return self.sample_seed * 1_000_003 + int(start)

    def draw_samples(self, batch: ForecastBatch, num_samples: int) -> Tensor:
        """``[B, S, Q, N]`` samples in scaled space, reproducible; raises on NaN/Inf.

        ``sample_seed_scope="window"``: each window's randomness is seeded from ``sample_seed``
        and its start, so it does not depend on the batch. A forecaster with
        ``per_window_noise`` is called once per batch with one generator per window
        (:class:`~probforecast.models.noise.SampleNoise`); any other once per window on the
        re-seeded global RNG. ``"batch"``: the global RNG is seeded from the batch's first window.
        """
        if self.sample_seed_scope == "window" and _draws_through_noise(self.forecaster):
            seeds = [self._window_seed(start) for start in batch.window_start.tolist()]
            noise = SampleNoise.per_window(seeds, device=batch.past_target.device)
            # the global RNG too, for what does not draw through ``noise`` (dropout in train mode)
            with self._seeded(seeds[0]):
                samples = self.forecaster.sample(batch, num_samples, noise=noise)
        elif self.sample_seed_scope == "batch" or batch.batch_size == 1:
            with self._seeded(self._window_seed(batch.window_start[0])):
                samples = self.forecaster.sample(batch, num_samples)
        else:
            parts = []
            for b, start in enumerate(batch.window_start.tolist()):
                with self._seeded(self._window_seed(start)):
                    parts.append(
                        self.forecaster.sample(batch.select_windows(slice(b, b + 1)), num_samples)
                    )
            samples = torch.cat(parts)
        expected = (batch.batch_size, num_samples, batch.future_target.shape[1], batch.num_series)
        if tuple(samples.shape) != expected:
            raise ValueError(
                f"{type(self.forecaster).__name__}.sample returned shape {tuple(samples.shape)}; "
                f"expected [B, S, Q, N] = {list(expected)}"
            )
        if not torch.isfinite(samples).all():
            raise NonFiniteError(
                f"{type(self.forecaster).__name__}.sample returned NaN/Inf for windows starting at "
                f"{batch.window_start.tolist()}"
            )
        return samples

    def _evaluate(self, batch: ForecastBatch, num_samples: int, collection, stage: str) -> Tensor:
        samples = self.draw_samples(batch, num_samples)
        if self.metrics_on_scaled:
            pred, target, past = samples, batch.future_target, batch.past_target
        else:
            past, target = batch.raw_targets()
            pred = batch.unscale(samples)
        for key, value in self.forecaster.sampling_diagnostics().items():
            self.log(
                f"{stage}/diagnostics/{key}",
                value,
                on_epoch=True,
                reduce_fx="sum",
                batch_size=batch.batch_size,
            )
        with metric_threads(pred.device):  # one switch for the whole collection
            collection.update(
                pred,
                target,
                mask=batch.future_observed,
                past_target=past,
                past_observed=batch.past_observed,
                series_scale=batch.spread(scaled=self.metrics_on_scaled),
            )
            if stage == "test" and self.test_series_metrics is not None:
                self.test_series_metrics.update(
                    pred, target, batch.future_observed, batch.series_ids
                )
        self.log_dict(collection, on_step=False, on_epoch=True, batch_size=batch.batch_size)
        self._log_loss(batch, stage)
        return samples

    def _log_loss(self, batch: ForecastBatch, stage: str) -> None:
        """``<stage>/loss``: the forecaster's loss on the batch, averaged over the epoch's
        windows; seeded, for losses that draw noise (VAE, diffusion)."""
        with torch.no_grad(), self._seeded(self._window_seed(batch.window_start[0]) + 1):
            loss = self.forecaster.loss(batch)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=batch.batch_size, sync_dist=True)

    def validation_step(self, batch: ForecastBatch, batch_idx: int) -> None:
        if self.val_num_samples == 0:
            self._log_loss(batch, "val")
            return
        self._evaluate(batch, self.val_num_samples, self.val_metrics, "val")

    def test_step(self, batch: ForecastBatch, batch_idx: int) -> Tensor:
        """Score the batch and return its samples ``[B, S, Q, N]`` (scaled space), so that test
        callbacks can reuse them; the per-series metrics (``test_series_metrics``, a
        ``SeriesMetrics`` over the forecaster's ``target_dim`` series, logged as a table by
        ``SeriesMetricsTable``) are updated here from the same samples."""
        return self._evaluate(batch, self.num_samples, self.test_metrics, "test")

    def predict_step(self, batch: ForecastBatch, batch_idx: int) -> dict[str, Tensor]:
        samples = self.draw_samples(batch, self.num_samples)
        return {
            "samples": batch.unscale(samples),
            "window_start": batch.window_start,
            "series_ids": batch.series_ids,
        }


def _draws_through_noise(forecaster: Forecaster) -> bool:
    """``per_window_noise`` declared, and not lost by a subclass whose ``sample`` dropped the
    ``noise`` argument."""
    return (
        forecaster.per_window_noise and "noise" in inspect.signature(forecaster.sample).parameters
    )
