"""Shared fixtures: the real data folder (../shared/data) and small synthetic data modules."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PROBFORECAST_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
warnings.filterwarnings("ignore", category=FutureWarning)


def have_real_data() -> bool:
    return (SHARED_DATA / "ETTh1" / "ETTh1.csv.gz").is_file()


requires_real_data = pytest.mark.skipif(
    not have_real_data(),
    reason=f"real datasets not found at {SHARED_DATA} (../shared/data beside the repo)",
)


#: Configs that run without ../shared/data (the rest name a real dataset).
REAL_DATA_FREE_CONFIGS = {"configs/quickstart.yaml"}


def config_needs_real_data(config: str) -> bool:
    """Whether a config (path relative to the repo or to ``configs/``) reads a real dataset."""
    return config not in REAL_DATA_FREE_CONFIGS and "synthetic" not in config


def _uses_real_data(item: pytest.Item) -> bool:
    if "data_root" in getattr(item, "fixturenames", ()):
        return True
    skips = item.iter_markers("skipif")
    if any("real datasets" in str(mark.kwargs.get("reason", "")) for mark in skips):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    config = params.get("config") or params.get("model_config")
    return isinstance(config, str) and config_needs_real_data(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``realdata``: every test that reads ../shared/data (the ``data_root`` fixture, the
    ``requires_real_data`` skip, or a config naming a real dataset); tests that check for the
    data in their body carry the marker themselves."""
    for item in items:
        if _uses_real_data(item):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not have_real_data():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory) -> Path:
    """One dataset cache per test process, for tests that only read the converted datasets (the
    conversion of a CSV is then paid once, not per test; each xdist worker has its own)."""
    return tmp_path_factory.mktemp("shared_cache")
