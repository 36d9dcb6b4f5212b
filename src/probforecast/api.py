"""The Python API, as short as the CLI: train, load, predict with timestamps.

>>> from probforecast import api
>>> from probforecast.data import ForecastDataModule
>>> dm = ForecastDataModule("synthetic", context_length=72, prediction_length=24)
>>> trained = api.fit("GaussianRNN", dm, max_epochs=5, hidden_size=32)   # data facts linked
>>> forecast = trained.predict()                  # Forecast: samples [W, S, Q, N] + timestamps
>>> forecast.quantiles([0.1, 0.5, 0.9], window=0)   # pandas DataFrame indexed by time
>>> again = api.load(trained.checkpoint_path)       # a new process: same weights, same samples

``fit`` builds the forecaster with the data facts of the data module (``target_dim``,
``context_length``, ``prediction_length``, ``freq``, ``num_time_features``), wraps it in
``ForecastModule``, runs a Lightning ``Trainer`` with the CLI's callbacks (best-CRPS checkpoint,
fan charts, model views, system metrics), reloads the best weights and returns a ``Predictor``.
Every checkpoint (of ``fit``, of ``probforecast fit`` or of a script) carries the forecaster's
class and arguments and every module setting, so ``load`` (``ForecastModule.load``) needs
nothing else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from probforecast.callbacks import (
    BEST_CRPS_CHECKPOINT,
    ForecastCheckpoint,
    ForecastPlot,
    ModelViews,
    SystemMetrics,
    ThroughputProgressBar,
)
from probforecast.data.datamodule import ForecastDataModule
from probforecast.models.base import DATA_FACTS, Forecaster
from probforecast.models.checkpoint_io import datamodule_from_checkpoint, module_from_checkpoint
from probforecast.models.module import ForecastModule
from probforecast.utils.checkpoint_meta import read_checkpoint
from probforecast.utils.gluonts_interop import to_gluonts_forecasts, to_gluonts_targets
from probforecast.utils.init_spec import import_path
from probforecast.viz import fan_chart

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- forecasts
@dataclass
class Forecast:
    """Raw-scale sample paths of ``W`` windows with their timestamps.

    Attributes:
        samples: ``[W, S, Q, N]`` float array (windows, samples, horizon, series).
        index: ``W`` pandas ``PeriodIndex`` es of length ``Q``: the horizon's timestamps.
        series_names: ``N`` names (the columns of ``quantiles``).
        window_start: ``[W]`` time index of each window's first horizon step.
        truth: ``[W, Q, N]`` observed values of the horizon (NaN where unobserved).
        history: ``[W, P, N]`` the context the forecasts were conditioned on (NaN where
            unobserved).
    """

    samples: np.ndarray
    index: list[pd.PeriodIndex]
    series_names: list[str]
    window_start: np.ndarray
    truth: np.ndarray
    history: np.ndarray

    def __len__(self) -> int:
        return self.samples.shape[0]

    def quantiles(self, levels: Sequence[float], window: int = 0) -> pd.DataFrame:
        """Sample quantiles of one window: a DataFrame indexed by the horizon's timestamps with
        columns ``(series, level)``; ``np.quantile`` (linear interpolation) over the samples."""
        levels = [float(q) for q in levels]
        if not levels or any(not 0.0 <= q <= 1.0 for q in levels):
            raise ValueError(f"quantile levels must lie in [0, 1]; got {levels}")
        quant = np.quantile(self.samples[window], levels, axis=0)  # [L, Q, N]
        columns = pd.MultiIndex.from_product([self.series_names, levels], names=["series", "level"])
        values = quant.transpose(1, 2, 0).reshape(quant.shape[1], -1)  # [Q, N * L]
        return pd.DataFrame(values, index=self.index[window], columns=columns)

    def median(self, window: int = 0) -> pd.DataFrame:
        """``[Q, N]`` sample median of one window, indexed by timestamps."""
        values = np.median(self.samples[window], axis=0)
        return pd.DataFrame(values, index=self.index[window], columns=self.series_names)

    def history_index(self, window: int = 0) -> pd.PeriodIndex:
        """The ``P`` periods of one window's history (those just before its horizon)."""
        horizon = self.index[window]
        return pd.period_range(end=horizon[0] - 1, periods=self.history.shape[1], freq=horizon.freq)

    def to_gluonts(self, multivariate: bool = True) -> list:
        """The windows as GluonTS ``SampleForecast`` s: one per window with samples
        ``[S, Q, N]`` (``multivariate``, for ``MultivariateEvaluator``), or one per window and
        series with samples ``[S, Q]`` (for ``Evaluator``), window-major. Pair them with
        ``gluonts_targets(multivariate)``; see ``utils/gluonts_interop.py``."""
        return to_gluonts_forecasts(self, multivariate)

    def gluonts_targets(self, multivariate: bool = True) -> list[pd.DataFrame]:
        """History + truth of each ``to_gluonts`` forecast: DataFrames on a ``PeriodIndex``
        (``[P + Q, N]``, or ``[P + Q, 1]`` per series), NaN where unobserved."""
        return to_gluonts_targets(self, multivariate)

    def plot(self, window: int = 0, series: Sequence[int] = (0, 1, 2, 3), max_history: int = 96):
        """Fan chart of one window: history, truth, median, 50 % and 90 % intervals."""
        cols = [c for c in series if c < self.samples.shape[3]]
        if not cols:
            raise ValueError(f"series must index the {self.samples.shape[3]} series; got {series}")
        return fan_chart(
            self.history[window][:, cols],
            self.truth[window][:, cols],
            self.samples[window][:, :, cols],
            [str(self.series_names[c]) for c in cols],
            max_history=max_history,
            time_index=self.history_index(window).append(self.index[window]).to_timestamp(),
        )


# ---------------------------------------------------------------------------- predictor
class Predictor:
    """A trained ``ForecastModule`` bound to a data module.

    Args:
        module: the trained module. datamodule: the data it predicts on.
        checkpoint_path: where its weights come from (``None`` if never saved).
        trainer: the trainer that fitted it (``fit`` only).
    """

    def __init__(
        self,
        module: ForecastModule,
        datamodule: ForecastDataModule,
        checkpoint_path: str | None = None,
        trainer: pl.Trainer | None = None,
    ) -> None:
        self.module, self.datamodule = module, datamodule
        self.checkpoint_path, self.trainer = checkpoint_path, trainer

    @property
    def forecaster(self) -> Forecaster:
        return self.module.forecaster

    def predict(
        self,
        split: Literal["test", "val"] = "test",
        num_samples: int | None = None,
        max_windows: int | None = None,
    ) -> Forecast:
        """Sample the rolling ``split`` windows (seeded per batch, as at test time).

        Args:
            split: ``test`` or ``val`` windows of the data module.
            num_samples: samples per window (default the module's ``num_samples``).
            max_windows: stop after this many windows.
        """
        if split not in ("test", "val"):
            raise ValueError(f"split must be 'test' or 'val'; got {split!r}")
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be >= 1; got {num_samples}")
        dm = self.datamodule
        dm.setup("test" if split == "test" else "validate")
        loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
        module, count = self.module, num_samples or self.module.num_samples
        was_training = module.training
        module.eval()
        out, starts, ids, truth, history = [], [], [], [], []
        try:
            with torch.no_grad():
                for batch in loader:
                    batch = batch.to(module.device)
                    out.append(batch.unscale(module.draw_samples(batch, count)).cpu())
                    starts.append(batch.window_start.cpu())
                    ids.append(batch.series_ids.cpu())
                    past, future = batch.raw_targets(unobserved_as_nan=True)
                    truth.append(future.double().cpu())
                    history.append(past.double().cpu())
                    if max_windows is not None and sum(len(s) for s in starts) >= max_windows:
                        break
        finally:
            module.train(was_training)
        if not out:
            raise ValueError(f"the data module has no {split} windows to predict")
        samples = torch.cat(out)[:max_windows].double().numpy()
        window_start = torch.cat(starts)[:max_windows].numpy()
        columns = torch.cat(ids)[0].tolist()
        names = [dm.series_names[i] for i in columns]
        q = samples.shape[2]
        index = [dm.timestamps(int(s), q) for s in window_start]
        return Forecast(
            samples,
            index,
            names,
            window_start,
            torch.cat(truth)[:max_windows].numpy(),
            torch.cat(history)[:max_windows].numpy(),
        )

    def test(self, **trainer_kwargs: Any) -> dict[str, float]:
        """Run the test split through a Trainer; returns the ``test/*`` metrics."""
        trainer = pl.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            **trainer_kwargs,
        )
        (results,) = trainer.test(self.module, self.datamodule, verbose=False)
        return {k: float(v) for k, v in results.items()}

    def plot(self, window: int = 0, series: Sequence[int] = (0, 1, 2, 3), num_samples: int = 100):
        """Fan chart of test ``window`` (see ``Forecast.plot``)."""
        forecast = self.predict(num_samples=num_samples, max_windows=window + 1)
        return forecast.plot(window, series, max_history=4 * forecast.samples.shape[2])


# ---------------------------------------------------------------------------- fit / load
def resolve_forecaster_class(forecaster: str | type) -> type:
    """``"GaussianRNN"`` (a name in ``probforecast.models``), ``"pkg.mod.Class"`` or a class."""
    if isinstance(forecaster, type):
        cls = forecaster
    elif isinstance(forecaster, str):
        path = forecaster if "." in forecaster else f"probforecast.models.{forecaster}"
        try:
            cls = import_path(path)
        except ValueError:
            raise ValueError(
                f"unknown forecaster {forecaster!r}: give a class, a name from "
                "probforecast.models (e.g. 'GaussianRNN') or a full class path"
            ) from None
    else:
        raise ValueError(f"forecaster must be a class, a name or an instance; got {forecaster!r}")
    if not (isinstance(cls, type) and issubclass(cls, Forecaster)):
        raise ValueError(f"{forecaster!r} is not a probforecast Forecaster subclass")
    return cls


def fit(
    forecaster: str | type | Forecaster,
    datamodule: ForecastDataModule,
    *,
    max_epochs: int = 10,
    lr: float = 1e-3,
    num_samples: int = 100,
    val_num_samples: int | None = None,
    root_dir: str | Path = "runs/api",
    logger: Literal["none", "csv", "wandb"] = "none",
    plots: bool = True,
    seed: int = 0,
    callbacks: Sequence[pl.Callback] = (),
    trainer_kwargs: dict[str, Any] | None = None,
    **forecaster_kwargs: Any,
) -> Predictor:
    """Train ``forecaster`` on ``datamodule`` and return a ``Predictor`` with the best weights
    (lowest ``val/crps``).

    Args:
        forecaster: a class, its name in ``probforecast.models`` or a class path (built with the
            data facts and ``forecaster_kwargs``), or an instance (then ``load`` of its
            checkpoints needs ``forecaster=``).
        max_epochs: training budget in epochs.
        lr: Adam learning rate.
        num_samples: samples per test window.
        val_num_samples: samples per validation window.
        root_dir: run directory (checkpoints, plots, logs). logger: ``none``, ``csv`` or
            ``wandb`` (offline unless ``WANDB_MODE=online``).
        plots: fan charts and model views at validation and test.
        seed: ``seed_everything``. callbacks: extra callbacks.
        trainer_kwargs: more ``Trainer`` arguments (``accelerator``, ``devices``, ...).
    """
    pl.seed_everything(seed, verbose=False)
    if isinstance(forecaster, Forecaster):
        if forecaster_kwargs:
            raise ValueError("pass forecaster keyword arguments only with a class or name")
        model = forecaster
    else:
        cls = resolve_forecaster_class(forecaster)
        facts = {fact: getattr(datamodule, fact) for fact in DATA_FACTS}
        model = cls(**facts, **forecaster_kwargs)
    module = ForecastModule(
        model,
        optimizer=partial(torch.optim.Adam, lr=lr),
        num_samples=num_samples,
        val_num_samples=val_num_samples,
    )
    root = Path(root_dir)
    checkpoint = ForecastCheckpoint(dirpath=str(root / "checkpoints"), **BEST_CRPS_CHECKPOINT)
    extra: list[pl.Callback] = [checkpoint, SystemMetrics(), *callbacks]
    if plots:
        extra += [ForecastPlot(), ModelViews()]
    if (trainer_kwargs or {}).get("enable_progress_bar", True):
        extra.append(ThroughputProgressBar())
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        default_root_dir=str(root),
        logger=_make_logger(logger, root),
        callbacks=extra,
        **{"enable_model_summary": False, **(trainer_kwargs or {})},
    )
    trainer.fit(module, datamodule)
    best = checkpoint.best_model_path or checkpoint.last_model_path or None
    if best:
        state = torch.load(best, map_location=module.device, weights_only=True)["state_dict"]
        module.load_state_dict(state)
    return Predictor(module, datamodule, best, trainer)


def load(
    checkpoint_path: str | Path,
    datamodule: ForecastDataModule | None = None,
    forecaster: Forecaster | None = None,
    map_location: str | torch.device = "cpu",
) -> Predictor:
    """Rebuild a trained ``Predictor`` from a checkpoint of ``fit``, of the CLI or of a script
    (``ForecastModule.load``: every saved setting, ``weights_only=True``).

    Args:
        checkpoint_path: a ``.ckpt`` file.
        datamodule: data to predict on (default: rebuilt from the checkpoint's data arguments).
        forecaster: an untrained instance of the right architecture, only for checkpoints that
            carry no forecaster spec and have no ``config.yaml`` in their run directory.
        map_location: device to load on.
    """
    path = Path(checkpoint_path)
    checkpoint = read_checkpoint(path, map_location)
    if datamodule is None:
        datamodule = datamodule_from_checkpoint(checkpoint, path)
    module = module_from_checkpoint(
        ForecastModule,
        checkpoint,
        path,
        forecaster=forecaster,
        datamodule=datamodule,
        map_location=map_location,
    )
    return Predictor(module, datamodule, str(path))


def _make_logger(kind: str, root: Path) -> Any:
    """``none`` -> no logger, ``csv`` -> ``<root>/csv/version_*/metrics.csv``, ``wandb`` ->
    a W&B run under ``<root>/wandb`` (offline unless ``WANDB_MODE`` says otherwise)."""
    if kind == "none":
        return False
    if kind == "csv":
        return pl.loggers.CSVLogger(save_dir=str(root), name="csv")
    if kind == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
        from probforecast.loggers import WandbLogger

        return WandbLogger(project="probforecast", save_dir=str(root))
    raise ValueError(f"logger must be 'none', 'csv' or 'wandb'; got {kind!r}")
