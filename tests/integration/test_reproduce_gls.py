"""scripts/reproduce_gls.py end to end on the paper's exchange split: a worker's fit + test, a
``--rescore`` of the same checkpoint, the table it writes, and the table rebuilt from the
archived result without the runs directory."""

from __future__ import annotations

import json
import shutil
from argparse import Namespace

import pytest

from tests.conftest import requires_real_data
from tests.script_loader import load_script as load_script_file

pytestmark = pytest.mark.slow


def load_script():
    return load_script_file("reproduce_gls")


@requires_real_data
def test_worker_fits_tests_rescores_and_writes_the_table(tmp_path, data_root, monkeypatch):
    script = load_script()
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = Namespace(
        dataset="exchange_rate_nips",
        model=["gpvar"],
        likelihood="gls",
        seeds=[1],
        max_steps=25,  # one epoch, then one validation
        repeats=2,
        num_samples=4,
        data_root=str(data_root),
        runs_dir=str(tmp_path / "runs"),
        out=str(tmp_path / "table.md"),
        archive=str(tmp_path / "archive"),
        tag="tiny",
        set=[
            "model.forecaster.init_args.hidden_size=4",
            "model.forecaster.init_args.sample_group_size=3",
        ],
        rescore=False,
        table_only=False,
        likelihood_arg="gls",
    )
    script.worker(args)
    out = tmp_path / "runs" / "exchange_rate_nips" / "gpvar_gls_tiny_seed1" / "result.json"
    first = json.loads(out.read_text())
    assert first["test_windows"] == [6067, 6068, 6069, 6070, 6071]
    assert first["steps"] == 25 and first["repeats"] == 2 and first["sample_group_size"] == 3
    assert first["crps"] > 0 and first["crps_repeat_std"] > 0  # two sampling passes differ

    args.rescore = True
    args.set = args.set[:1]  # the checkpoint re-tested with joint sampling
    out.unlink()  # as when a run is killed while testing: fit figures come from the checkpoints
    script.worker(args)
    second = json.loads(out.read_text())
    assert {k: second[k] for k in ("steps", "epochs")} == {"steps": 25, "epochs": 1}
    assert second["best_val_loss"] == first["best_val_loss"] and second["fit_seconds"] > 0
    assert second["sample_group_size"] is None and second["crps"] != first["crps"]

    jobs = [("gpvar", "gls", 1)]
    script.write_table(args, jobs)
    text = (tmp_path / "table.md").read_text()
    assert "<!-- reproduce_gls:exchange_rate_nips:tiny -->" in text
    row = next(line for line in text.splitlines() if line.startswith("| gpvar | w/ (GLS)"))
    assert f"{second['crps']:.4f} ± 0.0000 | 0.0141 ± " in row and "| all |" in row

    archived = tmp_path / "archive" / "exchange_rate_nips" / "gpvar_gls_tiny_seed1.json"
    assert json.loads(archived.read_text()) == second
    shutil.rmtree(tmp_path / "runs")  # a clone that never ran it: the table reads the archive
    (tmp_path / "table.md").unlink()
    script.write_table(args, jobs)
    assert row in (tmp_path / "table.md").read_text()
