"""``ForecastDataModule``: dataset -> tensors -> split protocol -> scaled window loaders."""

from __future__ import annotations

import logging
import math
from functools import cached_property

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from probforecast.data.batch import collate_windows
from probforecast.data.errors import DataError
from probforecast.data.loading import (
    GeneratorOptions,
    LoadedDataset,
    SyntheticOptions,
    default_cache_dir,
    load_dataset,
)
from probforecast.data.prepared import PreparedData, prepare
from probforecast.data.protocols import (
    PROTOCOLS,
    SplitOptions,
    SplitProtocol,
    make_split,
    resolve_protocol,
)
from probforecast.data.scaling import ScalingKind
from probforecast.data.splits import Split
from probforecast.data.synthetic.mixing import SyntheticSourceOptions, SyntheticWindows
from probforecast.data.time_features import check_time_feature_names
from probforecast.data.windows import EvaluationWindows, TrainingWindows
from probforecast.utils.resumable import EpochIndexSampler, fit_progress, make_resumable

log = logging.getLogger(__name__)


class ForecastDataModule(pl.LightningDataModule):
    """Multivariate forecasting data for every model of probforecast.

    Args:
        dataset: a registered name (see ``probforecast.data.DATASETS``), a CSV path (date column
            plus value columns) or a GluonTS dataset directory.
        root: data root holding the raw files (default: env ``PROBFORECAST_DATA``).
        context_length: ``P``, history steps fed to the model.
        prediction_length: ``Q``; default: the dataset protocol's horizon.
        freq: frequency override (required for CSVs whose frequency cannot be inferred).
        protocol: how the series is split into train / validation / test windows.
            ``default``: the dataset's protocol from the registry (``rolling``: GluonTS' rolling
            test entries; ``ett``: 12/4/4 months; ``ratio``: chronological ratios, also for user
            CSVs). ``gls_paper``: the GLS paper's protocol (``splits.consecutive_split``): the
            first test entry only, ``num_test_windows`` consecutive test starts, as many
            validation windows right before, training up to there; series of different
            lengths without timestamps (M4) start together, as in GluonTS' recipe that the
            paper's code used (so only the full-length M4 series reach the test windows).
            ``probts``: ProbTS' long-horizon protocol (the pipeline of VolDy-VAE's numbers), on
            datasets whose default is ``ett`` or ``ratio``: the same LTSF borders; validation and
            test windows start at the beginning of their range and step by ``val_stride`` /
            ``test_stride`` (default 96, ProbTS' ``test_rolling_length``), every window kept,
            the last start strictly before ``end - Q`` (``splits.probts_rolling_starts``). Pair
            it with ``model.metric_aggregation: window_mean`` (``configs/protocols/probts.yaml``
            sets both).
        split_ratios: train/val/test ratios of the ``ratio`` protocol (default 0.7/0.1/0.2).
        val_stride: step between rolling validation windows of the ``ett`` and ``ratio``
            protocols (default ``Q``: non-overlapping horizons; 1 is the LTSF loaders'
            every-start protocol, ``P + Q`` is CW-Gen's non-overlapping segments) and of
            ``probts`` (default 96).
        test_stride: the same for the test windows.
        max_val_windows: ``ett`` / ``ratio``: keep at most this many evenly spaced validation
            windows (default 32).
        max_test_windows: the same for the test windows (default: every test window).
        num_val_windows: validation windows of the ``rolling`` protocol (default 1).
        num_test_windows: test (and validation) windows of the ``gls_paper`` protocol (default:
            the registry's value, 5 for exchange_rate_nips and 7 for m4_hourly).
            An option the chosen protocol does not read raises a ``DataError`` (no silent
            no-op).
        scaling: per-series scaler fitted on the training range (``standard``, ``mean``, ``none``).
        time_features: names of GluonTS time features (``hour_of_day``, ``day_of_week``, ...;
            ``probforecast.data.time_features.TIME_FEATURE_NAMES``) in input order, or ``None``
            (default): GluonTS' set for the frequency (hourly: hour of day, day of week, day of
            month, day of year).
        batch_size: training windows per batch. eval_batch_size: windows per evaluation batch.
        num_batches_per_epoch: training batches per epoch (windows drawn at random, with
            replacement). ``None``: as many as one pass over the training windows takes,
            ``ceil(training windows / batch_size)``, so an epoch (and early stopping's patience)
            scales with the data; on small data (a few hundred windows) a fixed 100 batches of 64
            is ten passes per epoch.
        num_series_per_batch: train on random subsets of this many series (GPVar/GLS); ``None``
            uses all series.
        num_workers: DataLoader workers. seed: seeds window sampling.
        cache_dir: where converted datasets are cached (default ``$PROBFORECAST_CACHE``).
        download: allow GluonTS' own download when the local copy is missing.
        date_column: the timestamp column of CSV files.
        missing_values: values that mean "not observed" in the raw file (e.g. ``[-9999]`` for
            the sentinels of ``weather.csv``); they are masked like NaN (excluded from the
            scaler's statistics, the loss and the metrics). Default: none, as the official LTSF
            and ProbTS pipelines, which feed the sentinels to the model as values.
        synthetic: options of the built-in ``synthetic`` dataset.
        generator: options of the generated datasets (``kernelsynth``, ``lmc``, ``dynlmc_*``).
        train_source: train on synthetic windows (progressive or weighted mixing of generated
            corpora with ``target_dim`` channels) instead of the dataset's training range;
            validation and test stay on ``dataset``.
    """

    def __init__(
        self,
        dataset: str = "synthetic",
        root: str | None = None,
        context_length: int = 96,
        prediction_length: int | None = None,
        freq: str | None = None,
        protocol: SplitProtocol = "default",
        split_ratios: tuple[float, float, float] | None = None,
        val_stride: int | None = None,
        test_stride: int | None = None,
        max_val_windows: int | None = None,
        max_test_windows: int | None = None,
        num_val_windows: int | None = None,
        num_test_windows: int | None = None,
        scaling: ScalingKind = "standard",
        time_features: list[str] | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 16,
        num_batches_per_epoch: int | None = 50,
        num_series_per_batch: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        download: bool = False,
        date_column: str = "date",
        missing_values: list[float] | None = None,
        synthetic: SyntheticOptions | None = None,
        generator: GeneratorOptions | None = None,
        train_source: SyntheticSourceOptions | None = None,
    ) -> None:
        super().__init__()
        if context_length < 1:
            raise DataError(f"context_length must be >= 1; got {context_length}")
        if num_batches_per_epoch is not None and num_batches_per_epoch < 1:
            raise DataError(
                f"num_batches_per_epoch must be >= 1 or null (one pass); got {num_batches_per_epoch}"
            )
        if prediction_length is not None and prediction_length < 1:
            raise DataError(f"prediction_length must be >= 1; got {prediction_length}")
        self.save_hyperparameters()
        self.dataset_name = dataset
        self.root = root
        self.context_length = context_length
        self._prediction_length = prediction_length
        self._freq = freq
        if protocol not in PROTOCOLS:
            raise DataError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
        self.protocol = protocol
        # a YAML list of any length: ratio_borders checks that there are three
        self.split_ratios: tuple[float, ...] | None = (
            None if split_ratios is None else tuple(split_ratios)
        )
        self.val_stride, self.test_stride = val_stride, test_stride
        self.max_val_windows, self.max_test_windows = max_val_windows, max_test_windows
        self.num_val_windows, self.num_test_windows = num_val_windows, num_test_windows
        self.scaling = scaling
        check_time_feature_names(time_features)
        self.time_features = None if time_features is None else list(time_features)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_batches_per_epoch = num_batches_per_epoch
        self.num_series_per_batch = num_series_per_batch
        self.num_workers = num_workers
        self.seed = seed
        self.cache_dir, self.download, self.date_column = cache_dir, download, date_column
        self.missing_values = None if missing_values is None else [float(v) for v in missing_values]
        if self.missing_values is not None and not all(np.isfinite(self.missing_values)):
            raise DataError(
                f"missing_values must be finite numbers (NaN and inf are already masked); got "
                f"{missing_values}"
            )
        self.synthetic = synthetic or SyntheticOptions()
        self.generator = generator or GeneratorOptions()
        self.train_source = train_source

    # ------------------------------------------------------------------ data facts (linked by the CLI)
    @cached_property
    def loaded(self) -> LoadedDataset:
        return load_dataset(
            self.dataset_name,
            root=self.root,
            prediction_length=self._prediction_length,
            freq=self._freq,
            date_column=self.date_column,
            cache_dir=self.cache_dir,
            download=self.download,
            synthetic=self.synthetic,
            generator=self.generator,
            ragged_alignment="start" if self.protocol == "gls_paper" else "end",
        )

    @property
    def freq(self) -> str:
        return self._freq or self.loaded.info.freq

    @property
    def prediction_length(self) -> int:
        return self._prediction_length or self.loaded.info.prediction_length

    @property
    def target_dim(self) -> int:
        return self.prepared.windows.num_series

    @property
    def num_time_features(self) -> int:
        return self.prepared.windows.time_feat.shape[1]

    @property
    def series_names(self) -> list[str]:
        return self.prepared.series_names

    @property
    def split(self) -> Split:
        return self.prepared.split

    @cached_property
    def prepared(self) -> PreparedData:
        return prepare(
            self.loaded,
            self._make_split,
            context_length=self.context_length,
            prediction_length=self.prediction_length,
            freq=self.freq,
            scaling=self.scaling,
            missing_values=self.missing_values,
            dataset_name=self.dataset_name,
            time_feature_names=self.time_features,
        )

    @property
    def protocol_name(self) -> str:
        """The split protocol in force: ``rolling``, ``ett``, ``ratio``, ``gls_paper``,
        ``probts_ett`` or ``probts_ratio``."""
        return resolve_protocol(self.protocol, self.loaded.info.protocol, self.dataset_name)

    def _make_split(self, length: int, train_length: int, test_lengths: list[int]) -> Split:
        options = SplitOptions(
            split_ratios=self.split_ratios,
            val_stride=self.val_stride,
            test_stride=self.test_stride,
            max_val_windows=self.max_val_windows,
            max_test_windows=self.max_test_windows,
            num_val_windows=self.num_val_windows,
            num_test_windows=self.num_test_windows,
        )
        return make_split(
            self.protocol_name,
            options,
            dataset_name=self.dataset_name,
            freq=self.freq,
            prediction_length=self.prediction_length,
            paper_windows=self.loaded.info.gls_paper_windows,
            length=length,
            train_length=train_length,
            test_lengths=test_lengths,
        )

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Convert raw files into the cache once (rank 0 only, as Lightning calls it)."""
        _ = self.loaded

    def setup(self, stage: str | None = None) -> None:
        _ = self.prepared
        n = self.target_dim
        if self.num_series_per_batch is not None and not 1 <= self.num_series_per_batch <= n:
            raise DataError(
                f"num_series_per_batch={self.num_series_per_batch} must lie in [1, {n}] "
                f"(the dataset has {n} series)"
            )

    def train_dataloader(self) -> DataLoader:
        """Training windows; under a trainer the loader is resumable: epoch ``e`` and its batch
        ``k`` follow from the seed and the fit loop's progress alone, so a run resumed from a
        mid-epoch checkpoint draws what the uninterrupted run drew (``utils/resumable.py``)."""
        loader = self._training_loader()
        if self.trainer is None:
            return loader
        return make_resumable(loader, fit_progress(self.trainer))

    def _training_loader(self) -> DataLoader:
        if self.train_source is not None:
            windows = self.synthetic_windows()
            sampler: Sampler[int] = EpochIndexSampler(len(windows))
            return self._loader(windows, self.batch_size, sampler=sampler)
        data = TrainingWindows(
            self.prepared.windows, self.split.train_end, self.num_series_per_batch, self.seed
        )
        generator = torch.Generator().manual_seed(self.seed)
        sampler = RandomSampler(
            data,
            replacement=True,
            num_samples=self.batch_size * self.batches_per_epoch,
            generator=generator,
        )
        return self._loader(data, self.batch_size, sampler=sampler)

    @property
    def num_training_windows(self) -> int:
        """Distinct training windows: forecast starts ``P .. train_end - Q``."""
        return self.split.train_end - self.prediction_length - self.context_length + 1

    @property
    def batches_per_epoch(self) -> int:
        """``num_batches_per_epoch``, or one pass over the training windows when it is None."""
        if self.num_batches_per_epoch is not None:
            return self.num_batches_per_epoch
        if self.train_source is not None:
            raise DataError(
                "data.num_batches_per_epoch: null (one pass over the training windows) is not "
                "defined for synthetic train_source windows; set a number"
            )
        return math.ceil(self.num_training_windows / self.batch_size)

    def synthetic_windows(self) -> SyntheticWindows:
        """The ``train_source`` windows (in curriculum order: the loader does not shuffle).

        Windows have ``num_series_per_batch`` channels when it is set (their ``series_ids`` a
        random subset of the dataset's series), else as many as the dataset has series.
        """
        from probforecast.data.synthetic.store import load_corpus

        opts = self.train_source
        if opts is None:
            raise DataError("synthetic_windows() needs data.train_source (it is null)")
        cache = self.cache_dir or default_cache_dir()
        try:
            corpora = [
                load_corpus(
                    name,
                    cache,
                    num_samples=opts.num_samples,
                    num_channels=self.target_dim,
                    length=opts.length,
                    seed=opts.seed,
                )
                for name in opts.sources
            ]
            return SyntheticWindows(
                corpora,
                self.num_series_per_batch or self.target_dim,
                self.context_length,
                self.prediction_length,
                self.prepared.windows.time_feat[: self.split.train_end],
                self.batch_size * self.batches_per_epoch,
                opts.mode,
                opts.weights,
                self.seed,
                series_pool=self.target_dim,
            )
        except ValueError as err:
            raise DataError(f"data.train_source: {err}") from err

    def val_dataloader(self) -> DataLoader:
        return self._loader(
            EvaluationWindows(self.prepared.windows, self.split.val_starts), self.eval_batch_size
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader(
            EvaluationWindows(self.prepared.windows, self.split.test_starts), self.eval_batch_size
        )

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def _loader(self, data, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_windows,
            persistent_workers=self.num_workers > 0,
        )

    # ------------------------------------------------------------------ helpers for users and callbacks
    @property
    def series_test_std(self) -> torch.Tensor:
        """``[N]`` std of each series over the test range (raw scale), for normalised sharpness;
        every window carries its series' values as ``ForecastBatch.series_std``."""
        std = self.prepared.windows.series_std
        assert std is not None, "prepared windows always carry the test-range std"
        return std

    def timestamps(self, start_index: int, length: int) -> pd.PeriodIndex:
        return pd.period_range(self.prepared.start + start_index, periods=length, freq=self.freq)

    def describe(self) -> dict[str, object]:
        s = self.split
        return {
            "dataset": self.dataset_name,
            "freq": self.freq,
            "num_series": self.target_dim,
            "length": int(self.prepared.raw_values.shape[0]),
            "context_length": self.context_length,
            "prediction_length": self.prediction_length,
            "protocol": self.protocol_name,
            "train_end": s.train_end,
            "num_val_windows": len(s.val_starts),
            "num_test_windows": len(s.test_starts),
            "missing_fraction": float(np.mean(~np.isfinite(self.prepared.raw_values.numpy()))),
        }
