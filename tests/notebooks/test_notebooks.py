"""Every notebook in notebooks/ executes top to bottom (nbmake, fresh kernel each) on the tiny CI
budget (``PROBFORECAST_FAST=1``), from a copy in a temporary folder so nothing is written to the
repository; the executed copy must hold rendered figures. Notebooks that need the real datasets fall back to synthetic data without them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL_TIMEOUT_S = 240  # per notebook; each takes ~30 s on 2 loaded cores


def test_the_four_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_compare_models.ipynb",
        "03_synthetic_data.ipynb",
        "04_inside_gls.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook, tmp_path):
    shutil.copy(notebook, tmp_path / notebook.name)
    env = {
        **os.environ,
        "PROBFORECAST_FAST": "1",
        "PROBFORECAST_RUNS": str(tmp_path / "runs"),
        "PROBFORECAST_DATA": str(SHARED_DATA),
        "WANDB_MODE": "offline",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--nbmake", "--overwrite", notebook.name),
            *(f"--nbmake-timeout={KERNEL_TIMEOUT_S}", "-q", "-p", "no:cacheprovider"),
            *("--rootdir", str(tmp_path), "-c", os.devnull),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=KERNEL_TIMEOUT_S + 120,
    )
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stdout[-6000:]}"
    executed = json.loads((tmp_path / notebook.name).read_text())  # the copy, with outputs
    images = [
        output
        for cell in executed["cells"]
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{notebook.name} rendered no figure (a backend forced off-screen?)"
