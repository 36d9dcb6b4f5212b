"""Resolve a dataset name or path to GluonTS ``TrainDatasets``, offline first.

Raw files are converted once into the GluonTS repository layout in a cache directory
(``$PROBFORECAST_CACHE`` or ``~/.cache/probforecast``) and loaded through GluonTS from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from gluonts.dataset.common import ListDataset, MetaData, TrainDatasets

from probforecast.data.errors import DataError
from probforecast.data.gluonts_files import (
    cached_csv,
    cached_repository,
    extract_tar,
    fingerprint,
    grouped_arrays,
    load_gluonts_dir,
)
from probforecast.data.registry import DATASETS, DatasetInfo, dataset_names
from probforecast.data.sources import ltsf_csv, m4
from probforecast.data.synthetic import CorrelatedSeasonalSample, generate_correlated_seasonal

log = logging.getLogger(__name__)


@dataclass
class SyntheticOptions:
    """Options of the built-in synthetic dataset (see ``generate_correlated_seasonal``)."""

    num_series: int = 8
    length: int = 1200
    num_test_windows: int = 4
    error_ar_coef: float = 0.7
    noise_scale: float = 0.3
    observation_noise_scale: float = 0.0
    seed: int = 0


@dataclass
class GeneratorOptions:
    """Options of the generated datasets (``kernelsynth``, ``lmc``, ``dynlmc_*``): a corpus of
    ``num_samples`` samples of ``num_channels x length`` (cached on disk in chunks), stacked along
    the series axis (``num_samples * num_channels`` series), with ``num_test_windows`` rolling
    test windows. The paper's pretraining corpus (1500 x 160 x 1024) is built with
    ``probforecast.data.synthetic.load_corpus``."""

    num_samples: int = 1
    num_channels: int = 16
    length: int = 1024
    num_test_windows: int = 4
    seed: int = 0
    chunk_size: int = 50


@dataclass(frozen=True)
class GroupedArrays:
    """The multivariate view the data module slices: ``values [T, N]`` float64 (NaN where a
    series is missing), its start, the train length and the lengths of the rolling test
    entries, and the series names."""

    values: np.ndarray
    start: pd.Period
    train_length: int
    test_lengths: list[int]
    names: list[str]


class LoadedDataset:
    """A dataset as GluonTS ``TrainDatasets`` and as ``GroupedArrays``. File sources are read as
    GluonTS datasets and grouped on first use; generated sources (``synthetic``, ``kernelsynth``,
    ``lmc``, ``dynlmc_*``) give the arrays directly and build the GluonTS objects only if
    ``datasets`` is read."""

    def __init__(
        self,
        info: DatasetInfo,
        datasets: TrainDatasets | None = None,
        ground_truth: CorrelatedSeasonalSample | None = None,
        arrays: GroupedArrays | None = None,
        build_datasets: Callable[[], TrainDatasets] | None = None,
    ) -> None:
        if datasets is None and build_datasets is None:
            raise ValueError("LoadedDataset needs datasets or build_datasets")
        self.info, self.ground_truth = info, ground_truth
        self._datasets, self._build, self._arrays = datasets, build_datasets, arrays

    @property
    def datasets(self) -> TrainDatasets:
        if self._datasets is None:
            assert self._build is not None
            self._datasets = self._build()
        return self._datasets

    @property
    def arrays(self) -> GroupedArrays:
        if self._arrays is None:
            self._arrays = GroupedArrays(
                *grouped_arrays(self.datasets),
                names=[str(e.get("item_id", i)) for i, e in enumerate(self.datasets.train)],
            )
        return self._arrays


def default_cache_dir() -> Path:
    return Path(os.environ.get("PROBFORECAST_CACHE", Path.home() / ".cache" / "probforecast"))


def resolve_root(root: str | os.PathLike | None) -> Path | None:
    value = root if root is not None else os.environ.get("PROBFORECAST_DATA")
    return Path(value).expanduser() if value else None


def _require_files(info: DatasetInfo, root: Path | None) -> list[Path]:
    if root is None:
        raise DataError(
            f"dataset {info.name!r} needs a data root: pass --data.root DIR or set PROBFORECAST_DATA "
            f"(expected file {info.files[0]!r} under it; official copy: {info.source})"
        )
    paths = [root / rel for rel in info.files]
    for path in paths:
        if not path.is_file():
            raise DataError(
                f"dataset {info.name!r}: file {path} not found; official copy: {info.source}. "
                "Put it there, point --data.root elsewhere, or set data.download: true "
                "(for GluonTS repository datasets)"
            )
    return paths


def _synthetic(options: SyntheticOptions, prediction_length: int) -> LoadedDataset:
    sample = generate_correlated_seasonal(
        num_series=options.num_series,
        length=options.length,
        error_ar_coef=options.error_ar_coef,
        noise_scale=options.noise_scale,
        observation_noise_scale=options.observation_noise_scale,
        seed=options.seed,
    )
    return _rolling(
        sample.values.T, DATASETS["synthetic"], prediction_length, options.num_test_windows, sample
    )


def _generated(
    info: DatasetInfo, options: GeneratorOptions, prediction_length: int, cache: Path
) -> LoadedDataset:
    from probforecast.data.synthetic.store import CorpusSpec, SyntheticCorpus

    try:
        spec = CorpusSpec(
            info.name,
            options.num_samples,
            options.num_channels,
            options.length,
            options.seed,
            options.chunk_size,
        )
        corpus = SyntheticCorpus(spec, cache).generate()
    except ValueError as err:
        raise DataError(f"data.generator for {info.name!r}: {err}") from err
    values = np.concatenate([np.asarray(corpus[i], np.float64) for i in range(len(corpus))])
    return _rolling(values, info, prediction_length, options.num_test_windows)


def _rolling(
    values: np.ndarray,
    info: DatasetInfo,
    prediction_length: int,
    num_test_windows: int,
    ground_truth: CorrelatedSeasonalSample | None = None,
) -> LoadedDataset:
    """Generated ``values [N, T]``: training on all but the last ``num_test_windows`` horizons,
    one rolling test entry per window; the arrays directly, the GluonTS view on demand."""
    start = pd.Period("2020-01-01 00:00", freq=info.freq)
    length = values.shape[1]
    train_len = length - num_test_windows * prediction_length
    if train_len <= 0:
        raise DataError(
            f"{info.name} length {length} is too short for {num_test_windows} test "
            f"windows of {prediction_length} steps"
        )
    arrays = GroupedArrays(
        # float32-rounded as GluonTS stores targets: the same numbers as the GluonTS view
        np.ascontiguousarray(values.T.astype(np.float32), dtype=np.float64),
        start,
        train_len,
        [train_len + k * prediction_length for k in range(1, num_test_windows + 1)],
        [str(i) for i in range(values.shape[0])],
    )
    return LoadedDataset(
        info,
        ground_truth=ground_truth,
        arrays=arrays,
        build_datasets=lambda: _rolling_datasets(values, info, prediction_length, arrays),
    )


def _rolling_datasets(
    values: np.ndarray, info: DatasetInfo, prediction_length: int, arrays: GroupedArrays
) -> TrainDatasets:
    """``values [N, T]`` as the GluonTS view of ``arrays``: train entries of
    ``arrays.train_length`` steps, one rolling test entry per ``arrays.test_lengths``."""
    start, names = arrays.start, arrays.names
    train = [
        {"start": start, "target": row[: arrays.train_length], "item_id": name}
        for name, row in zip(names, values, strict=True)
    ]
    test = [
        {"start": start, "target": row[:length], "item_id": name}
        for length in arrays.test_lengths
        for name, row in zip(names, values, strict=True)
    ]
    meta = MetaData(freq=info.freq, prediction_length=prediction_length)
    return TrainDatasets(
        metadata=meta,
        train=ListDataset(train, freq=info.freq),
        test=ListDataset(test, freq=info.freq),
    )


@dataclass(frozen=True)
class LoadRequest:
    """What ``load_dataset`` was asked for, handed to the reader of the dataset's kind."""

    root: Path | None
    prediction_length: int
    date_column: str
    cache: Path
    download: bool
    synthetic: SyntheticOptions | None
    generator: GeneratorOptions | None
    ragged_alignment: Literal["end", "start"]


def _read_synthetic(info: DatasetInfo, req: LoadRequest) -> LoadedDataset:
    return _synthetic(req.synthetic or SyntheticOptions(), req.prediction_length)


def _read_generated(info: DatasetInfo, req: LoadRequest) -> LoadedDataset:
    return _generated(info, req.generator or GeneratorOptions(), req.prediction_length, req.cache)


def _read_gluonts_tar(info: DatasetInfo, req: LoadRequest) -> LoadedDataset:
    paths = _require_files(info, req.root)
    directory = extract_tar(paths[0], req.cache / f"{info.name}-{fingerprint(paths, '')}")
    return LoadedDataset(info, load_gluonts_dir(directory))


def _read_m4_csv(info: DatasetInfo, req: LoadRequest) -> LoadedDataset:
    paths = _require_files(info, req.root)

    def build_m4():
        train, test = m4.read_m4(paths[0], paths[1], info.freq, req.ragged_alignment)
        return info.freq, req.prediction_length, train, test

    key = "m4" if req.ragged_alignment == "end" else "m4-start-nan-padded"
    return LoadedDataset(info, cached_repository(info.name, paths, key, build_m4, req.cache))


def _read_ltsf_csv(info: DatasetInfo, req: LoadRequest) -> LoadedDataset:
    path = _require_files(info, req.root)[0]
    csv = cached_csv(info.name, path, info.freq, req.prediction_length, req.date_column, req.cache)
    return LoadedDataset(info, csv)


#: How each registry kind (``DatasetInfo.kind``) is read; a new source kind is one entry here.
READERS: dict[str, Callable[[DatasetInfo, LoadRequest], LoadedDataset]] = {
    "synthetic": _read_synthetic,
    "generator": _read_generated,
    "gluonts_tar": _read_gluonts_tar,
    "m4_csv": _read_m4_csv,
    "ltsf_csv": _read_ltsf_csv,
}
#: Kinds read from files under the data root (the others are generated in process).
FILE_KINDS = frozenset({"gluonts_tar", "m4_csv", "ltsf_csv"})


def load_dataset(
    dataset: str,
    *,
    root: str | os.PathLike | None = None,
    prediction_length: int | None = None,
    freq: str | None = None,
    date_column: str = "date",
    cache_dir: str | os.PathLike | None = None,
    download: bool = False,
    synthetic: SyntheticOptions | None = None,
    generator: GeneratorOptions | None = None,
    ragged_alignment: Literal["end", "start"] = "end",
) -> LoadedDataset:
    """Load a registered dataset by name (through ``READERS``, by its kind), a CSV file or a
    GluonTS dataset directory by path.

    ``ragged_alignment``: how series of different lengths without timestamps (M4) are laid on
    a common time axis: ``end`` (they end together) or ``start`` (they start together, as
    GluonTS' recipe).

    Raises:
        DataError: unknown name, missing file (naming the file expected and its official source),
            or malformed contents.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if dataset in DATASETS:
        info = DATASETS[dataset]
        request = LoadRequest(
            resolve_root(root),
            prediction_length or info.prediction_length,
            date_column,
            cache,
            download,
            synthetic,
            generator,
            ragged_alignment,
        )
        if (
            download
            and info.kind in FILE_KINDS
            and info.gluonts_name
            and not _has_files(info, request.root)
        ):
            from gluonts.dataset.repository import get_dataset

            log.warning("downloading %s through GluonTS (data.download: true)", info.gluonts_name)
            return LoadedDataset(info, get_dataset(info.gluonts_name, path=cache / "gluonts"))
        return READERS[info.kind](info, request)
    return _load_path(
        Path(dataset).expanduser(), dataset, prediction_length, freq, date_column, cache
    )


def _has_files(info: DatasetInfo, root: Path | None) -> bool:
    return root is not None and all((root / f).is_file() for f in info.files)


def _load_path(
    path: Path,
    dataset: str,
    prediction_length: int | None,
    freq: str | None,
    date_column: str,
    cache: Path,
) -> LoadedDataset:
    """A user CSV file or GluonTS dataset directory."""
    if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        frame = ltsf_csv.read_wide_csv(path, date_column)
        user_freq = freq or ltsf_csv.infer_freq(frame, path)
        if not prediction_length:
            raise DataError(f"data.prediction_length is required for a user CSV ({path})")
        info = DatasetInfo(
            path.stem, "ltsf_csv", (str(path),), user_freq, prediction_length, "ratio", str(path)
        )
        return LoadedDataset(
            info, cached_csv(path.stem, path, user_freq, prediction_length, date_column, cache)
        )
    if path.is_dir():
        datasets = load_gluonts_dir(path, freq)
        user_freq = freq or datasets.metadata.freq
        q = prediction_length or datasets.metadata.prediction_length
        if not q:
            raise DataError(f"data.prediction_length is required: {path}/metadata has none")
        info = DatasetInfo(
            path.name, "gluonts_tar", (str(path),), user_freq, q, "rolling", str(path)
        )
        return LoadedDataset(info, datasets)
    raise DataError(
        f"unknown dataset {dataset!r}: expected one of {dataset_names()}, a CSV file path "
        "(date column + value columns) or a GluonTS dataset directory"
    )
