"""``scripts/synthetic_transfer.py`` end to end at a tiny budget on real etth1: pretraining rows
evaluated zero-shot, the fine-tuned ceiling (from cached pretrained weights), the floor row, the
table and the verdict, and a rerun that skips finished tasks."""

from __future__ import annotations

import json

import pytest

from tests.conftest import requires_real_data
from tests.script_loader import load_script

pytestmark = pytest.mark.slow


@requires_real_data
def test_pretrain_evaluate_table_and_resume(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("PROBFORECAST_CACHE", str(tmp_path / "cache"))
    script = load_script("synthetic_transfer")
    out = tmp_path / "synthetic.md"
    out.write_text(f"intro\n{script.START}\nold\n{script.END}\n")
    archive = tmp_path / "archive.jsonl"
    argv = [
        "--data-root", str(data_root), "--seeds", "1", "2", "--datasets", "etth1",
        "--rows", "lmc", "dynlmc_drift", "fine_tuned", "seasonal_naive", "--max-steps", "2",
        "--batch-size", "4", "--corpus-samples", "2", "--corpus-length", "256",
        "--max-test-windows", "2", "--runs-dir", str(tmp_path / "runs"),
        "--archive", str(archive), "--out", str(out),
    ]  # fmt: skip
    script.main(argv)
    lines = [json.loads(x) for x in archive.read_text().splitlines()]
    assert sorted((r["row"], r["seed"]) for r in lines) == [
        ("dynlmc_drift", 1), ("dynlmc_drift", 2), ("fine_tuned", 1), ("fine_tuned", 2),
        ("lmc", 1), ("lmc", 2), ("seasonal_naive", 1),
    ]  # fmt: skip
    states = sorted(p.name for p in (tmp_path / "runs" / "states").iterdir())
    assert "progressive_seed1_steps2.pt" in states  # fine_tuned starts from these weights
    assert all(r["dataset"] == "etth1" and r["test_windows"] == 2 for r in lines)
    assert all(r["crps"] > 0 and r["mae"] > 0 for r in lines)
    text = out.read_text()
    assert "old" not in text and "| dynlmc_drift | " in text and "| seasonal_naive | " in text
    verdict = next(
        x for x in text.splitlines() if x.startswith("| dynlmc_drift | ") and "vs lmc" in x
    )
    assert " sd, vs lmc)" in verdict
    script.main(argv)  # everything is done: nothing is trained again
    assert len(archive.read_text().splitlines()) == len(lines)
