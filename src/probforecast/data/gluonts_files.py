"""GluonTS dataset files: tarballs extracted once, dataset directories read, raw files
converted once into the GluonTS repository layout (cached under a fingerprint of the sources),
and the multivariate view of a ``TrainDatasets``."""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from gluonts.dataset.common import MetaData, TrainDatasets

from probforecast.data.errors import DataError
from probforecast.data.sources import gluonts_cache, ltsf_csv

log = logging.getLogger(__name__)


def fingerprint(paths: list[Path], extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def extract_tar(tar_path: Path, target: Path) -> Path:
    """Extract a GluonTS dataset tarball once; return the directory holding metadata/."""
    marker = target / ".complete"
    if not marker.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        with tarfile.open(tar_path) as archive:
            archive.extractall(tmp, filter="data")
        (tmp / ".complete").touch()
        gluonts_cache.move_into_place(tmp, target, lambda d: (d / ".complete").exists())
    found = [p.parent.parent for p in target.rglob("metadata/metadata.json")]
    found += [p.parent for p in target.rglob("metadata.json") if p.parent.name != "metadata"]
    if not found:
        raise DataError(f"{tar_path} does not hold a GluonTS dataset (no metadata.json inside)")
    return found[0]


def load_gluonts_dir(directory: Path, freq: str | None = None) -> TrainDatasets:
    """Read a GluonTS dataset directory (``metadata/metadata.json`` or ``metadata.json``, then
    ``train/`` and ``test/`` JSON lines) with GluonTS' ``FileDataset``. Older datasets (the
    ``*_nips`` ones) name the frequency ``time_granularity``; both spellings are accepted."""
    from gluonts.dataset.common import FileDataset

    meta_file = directory / "metadata" / "metadata.json"
    if not meta_file.is_file():
        meta_file = directory / "metadata.json"
    if not meta_file.is_file():
        raise DataError(f"{directory} is not a GluonTS dataset directory: no metadata.json")
    meta = json.loads(meta_file.read_text())
    freq = freq or meta.get("freq") or meta.get("time_granularity")
    if not freq:
        raise DataError(f"{meta_file} names no frequency; set data.freq")
    if not (directory / "train").is_dir():
        raise DataError(f"{directory} has no train/ folder")
    test = directory / "test"
    return TrainDatasets(
        metadata=MetaData(freq=freq, prediction_length=meta.get("prediction_length")),
        train=FileDataset(directory / "train", freq=freq),
        test=FileDataset(test, freq=freq) if test.is_dir() else None,
    )


def cached_repository(
    info_name: str, sources: list[Path], key: str, build, cache_dir: Path
) -> TrainDatasets:
    directory = cache_dir / f"{info_name}-{fingerprint(sources, key)}"
    if not gluonts_cache.is_valid_repository(directory):
        log.info("converting %s into GluonTS layout at %s (once)", info_name, directory)
        freq, prediction_length, train, test = build()
        gluonts_cache.write_repository(directory, freq, prediction_length, train, test)
    return gluonts_cache.read_repository(directory)


def cached_csv(
    name: str, path: Path, freq: str, prediction_length: int, date_column: str, cache: Path
) -> TrainDatasets:
    def build():
        frame = ltsf_csv.read_wide_csv(path, date_column)
        # GluonTS layout: test holds the full series; the protocol cuts train/val/test from it.
        entries = ltsf_csv.frame_to_entries(frame, freq)
        return freq, prediction_length, entries, entries

    return cached_repository(name, [path], f"csv:{freq}:{date_column}", build, cache)


def grouped_arrays(datasets: TrainDatasets) -> tuple[np.ndarray, pd.Period, int, list[int]]:
    """The multivariate view through ``MultivariateGrouper`` (NaN where a series is missing).

    Returns:
        ``values [T, N]`` of the longest test entry (or train when there is no test), its start,
        the train length and the lengths of the grouped test entries (one per rolling date).
    """
    from gluonts.dataset.multivariate_grouper import MultivariateGrouper

    train_entries = list(datasets.train)
    if not train_entries:
        raise DataError("the dataset has no training series")
    num_series = len(train_entries)
    nan_fill = lambda x: np.nan  # noqa: E731  (fill rule: pad with NaN, kept as unobserved)
    train = next(iter(MultivariateGrouper(train_fill_rule=nan_fill)(datasets.train)))
    test_entries = list(datasets.test) if datasets.test is not None else []
    if test_entries:
        if len(test_entries) % num_series:
            raise DataError(
                f"the test split holds {len(test_entries)} series, not a multiple of the "
                f"{num_series} training series"
            )
        grouper = MultivariateGrouper(
            num_test_dates=len(test_entries) // num_series, test_fill_rule=nan_fill
        )
        test = list(grouper(datasets.test))
    else:
        test = [train]
    longest = max(test, key=lambda e: e["target"].shape[1])
    values = np.asarray(longest["target"], dtype=np.float64).T
    if pd.Period(longest["start"]) != pd.Period(train["start"]):
        raise DataError("train and test series do not share a start date")
    return values, longest["start"], train["target"].shape[1], [e["target"].shape[1] for e in test]
