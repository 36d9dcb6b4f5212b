"""``scripts/gpu_check.py`` runs end to end on the CPU at smoke sizes (what CI can check of the
device check) and reports every metric, the GLS likelihood and every model family in both
precisions."""

from __future__ import annotations

import importlib.util
import sys

from probforecast.metrics import METRIC_REGISTRY
from tests.conftest import REPO


def test_gpu_check_smoke_run_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = gpu_check  # dataclasses look their module up there
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu_check.md"
    table = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out)])
    assert out.read_text() == table
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][1:]
    metrics = {r[1] for r in rows if r[0] == "| metric"}
    assert metrics == set(METRIC_REGISTRY)
    assert any(r[1] == "gls_log_prob" for r in rows)
    runs = {(r[1], r[3]) for r in rows if r[0] == "| epoch + test"}
    families = {f for f, _ in runs}
    assert len(families) == 6 and runs == {
        (f, p) for f in families for p in ("32-true", "bf16-mixed")
    }
