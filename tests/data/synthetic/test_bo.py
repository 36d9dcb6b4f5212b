"""Mixture search (Algorithm 2): simplex weights, argmin over trials, reproducibility, and the
script end to end on a tiny budget (built-in synthetic validation data, no files needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from probforecast.data.synthetic.bo import optimise_mixture  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def quadratic(target):
    return lambda gamma: float(((gamma - target) ** 2).sum())


def test_tpe_returns_the_best_trial_and_reproduces():
    target = np.array([0.6, 0.3, 0.1])
    a = optimise_mixture(quadratic(target), ["a", "b", "c"], n_trials=25, seed=3)
    b = optimise_mixture(quadratic(target), ["a", "b", "c"], n_trials=25, seed=3)
    assert [t.gamma for t in a.trials] == [t.gamma for t in b.trials]
    losses = [t.loss for t in a.trials]
    assert a.best.loss == min(losses)
    assert np.allclose(a.trials[0].gamma, 1 / 3)  # the uniform mixture is trial 0
    for t in a.trials:
        assert min(t.gamma) > 0 and abs(sum(t.gamma) - 1) < 1e-12
        assert t.loss == pytest.approx(quadratic(target)(np.array(t.gamma)))
    assert a.best.loss < a.trials[0].loss  # TPE improved on the uniform start
    with pytest.raises(ValueError, match="sources"):
        optimise_mixture(quadratic(target), ["a"], n_trials=2)


@pytest.mark.slow
def test_bo_script_runs_with_a_tiny_budget(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bo_mixing", REPO / "scripts" / "bo_mixing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    search = module.main(
        [
            "--dataset",
            "synthetic",
            "--trials",
            "2",
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--samples",
            "2",
            "--length",
            "96",
            "--context",
            "24",
            "--horizon",
            "12",
            "--val-windows",
            "2",
            "--eval-samples",
            "4",
            "--cache-dir",
            str(tmp_path),
        ]
    )
    assert len(search.trials) == 2 and np.isfinite(search.best.loss)
    assert "gamma*" in capsys.readouterr().out
