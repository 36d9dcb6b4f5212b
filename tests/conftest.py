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
