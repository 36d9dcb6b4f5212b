"""Data: named datasets with their protocols, synthetic data, and the DataModule."""

from probforecast.data.batch import ForecastBatch, collate_windows
from probforecast.data.datamodule import ForecastDataModule
from probforecast.data.errors import DataError
from probforecast.data.loading import GeneratorOptions, SyntheticOptions, load_dataset
from probforecast.data.registry import DATASETS, DatasetInfo, dataset_names

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "ForecastBatch",
    "ForecastDataModule",
    "GeneratorOptions",
    "SyntheticOptions",
    "collate_windows",
    "dataset_names",
    "load_dataset",
]
