"""GPVar and the Transformer with the GLS likelihood through the real CLI: fit, then test the best
checkpoint in a new process (their shipped synthetic configs, on a tiny budget)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import ok, run_cli
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY = [
    "--trainer.max_steps",
    "6",
    "--trainer.logger",
    "false",
    "--data.num_batches_per_epoch",
    "3",
    "--data.batch_size",
    "4",
    "--data.synthetic.length",
    "700",
    "--data.synthetic.num_test_windows",
    "2",
    "--model.val_num_samples",
    "4",
    "--model.num_samples",
    "8",
    "--model.forecaster.init_args.hidden_size",
    "8",
    "--forecast_plot.every_n_val_epochs",
    "0",
]


@pytest.mark.parametrize("model", ["gpvar", "transformer"])
def test_gls_fit_then_test_best_checkpoint(model, tmp_path):
    root = tmp_path / "run"
    common = [
        "--config",
        str(REPO / "configs" / model / "synthetic.yaml"),
        "--trainer.default_root_dir",
        str(root),
        *TINY,
    ]
    ok(run_cli("fit", *common, cwd=tmp_path))
    best = json.loads((root / "checkpoints" / "best.json").read_text())
    assert Path(best["best_model_path"]).is_file() and best["monitor"] == "val/crps"
    test = ok(run_cli("test", *common, "--ckpt_path", "best", cwd=tmp_path))
    for key in ("test/crps", "test/crps_sum", "test/energy_score"):
        assert key in test.stdout
