"""``probforecast.evaluate`` on real LightningCLI runs of the quickstart config (synthetic data):
fit, reload the best checkpoint, backtest over sampling passes, and the command line."""

from __future__ import annotations

import json
import statistics

import lightning.pytorch as pl
import pytest
import torch

from probforecast.evaluate import (
    FIRST_SAMPLE_SEED,
    QUIET_RUN_ARGS,
    backtest,
    fit_run,
    format_mean_std,
    module_metrics,
    reload_run,
    window_mean_scorer,
)
from probforecast.evaluate.__main__ import main as evaluate_main
from probforecast.metrics.functional import window_mean_scores
from probforecast.models.module import ForecastModule
from probforecast.utils.checkpoint_meta import read_checkpoint
from tests.conftest import REPO

pytestmark = pytest.mark.slow

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
TINY = [
    "--trainer.max_epochs", "2",
    "--data.num_batches_per_epoch", "3",
    "--data.batch_size", "8",
    "--model.forecaster.init_args.hidden_size", "8",
    "--model.val_num_samples", "8",
    "--model.num_samples", "16",
    "--data.synthetic.length", "500",
    "--data.synthetic.num_series", "4",
    "--data.eval_batch_size", "3",
]  # fmt: skip


def run_args(root) -> list[str]:
    return ["--config", QUICKSTART, "--trainer.default_root_dir", str(root), *QUIET_RUN_ARGS, *TINY]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate") / "run"
    return root, fit_run(run_args(root))


def test_fit_run_reloads_the_recorded_best_checkpoint(fitted):
    root, run = fitted
    best = json.loads((root / "checkpoints" / "best.json").read_text())
    assert run.best_path == best["best_model_path"]
    assert run.fit["best_score"] == pytest.approx(best["best_model_score"])
    state = read_checkpoint(run.best_path)
    assert run.fit["best_epoch"] == int(state["epoch"]) + 1
    assert run.fit["steps"] == 6 and run.fit["epochs"] == 2 and run.fit["fit_seconds"] > 0
    for name, tensor in run.module.state_dict().items():
        assert torch.equal(tensor, state["state_dict"][name]), name
    assert not run.module.training


def test_reload_run_rebuilds_the_same_module_and_fit_figures(fitted):
    root, run = fitted
    again = reload_run(root)
    assert again.best_path == run.best_path
    assert {k: again.fit[k] for k in ("steps", "epochs", "best_epoch")} == {
        k: run.fit[k] for k in ("steps", "epochs", "best_epoch")
    }
    assert again.fit["best_score"] == pytest.approx(run.fit["best_score"])
    for (name, a), b in zip(
        again.module.state_dict().items(), run.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert again.datamodule.split.test_starts == run.datamodule.split.test_starts
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        reload_run(root / "nowhere")


def test_backtest_is_the_mean_of_independently_seeded_passes(fitted):
    _, run = fitted
    module, dm = run.module, run.datamodule
    module.sample_seed = 7
    out = backtest(module, dm, repeats=2)
    assert module.sample_seed == 7  # restored
    passes = []
    for r in range(2):  # the reference: Trainer.test as `probforecast test` runs it
        module.sample_seed = FIRST_SAMPLE_SEED + r
        (result,) = pl.Trainer(logger=False, enable_progress_bar=False, callbacks=[]).test(
            module, dm, verbose=False
        )
        passes.append({k.removeprefix("test/"): v for k, v in result.items()})
    module.sample_seed = 7
    assert passes[0]["crps"] != passes[1]["crps"]
    for name in passes[0]:
        values = [p[name] for p in passes]
        assert out[name] == pytest.approx(statistics.fmean(values), rel=1e-6), name
        assert out[f"{name}_repeat_std"] == pytest.approx(statistics.pstdev(values), abs=1e-9)
    assert out["repeats"] == 2 and out["test_seconds"] > 0
    one = backtest(module, dm, repeats=1)
    assert one["crps"] == pytest.approx(passes[0]["crps"], rel=1e-6) and one["crps_repeat_std"] == 0


def test_backtest_refuses_no_pass_and_nan_scores(fitted):
    _, run = fitted
    before = run.module.sample_seed
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        backtest(run.module, run.datamodule, repeats=0)
    with pytest.raises(ValueError, match="pass 0 scored crps = NaN"):
        backtest(run.module, run.datamodule, scorer=lambda m, d: {"crps": float("nan")})
    assert run.module.sample_seed == before  # restored after a failing pass too


def test_window_mean_scorer_averages_every_window_across_batches(fitted):
    _, run = fitted
    module, dm = run.module, run.datamodule
    module.sample_seed = FIRST_SAMPLE_SEED
    per_window = {}
    with torch.no_grad():  # the reference: all windows in one batch, then the mean
        batches = list(dm.test_dataloader())
        assert len(batches) > 1  # eval_batch_size 3 < the test windows: several batches
        for batch in batches:
            samples = batch.unscale(module.draw_samples(batch, 5))
            scores = window_mean_scores(
                samples, batch.unscale(batch.future_target), batch.future_observed
            )
            for k, v in scores.items():
                per_window.setdefault(k, []).append(v)
    expected = {k: float(torch.cat(v).mean()) for k, v in per_window.items()}
    out = backtest(module, dm, scorer=window_mean_scorer(5))
    assert {k: out[k] for k in expected} == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        window_mean_scorer(0)


def test_test_metrics_names_scores_without_prefix(fitted):
    _, run = fitted
    scores = module_metrics(run.module, run.datamodule)
    assert "crps" in scores and not any(k.startswith("test/") for k in scores)


def test_command_line_fits_each_seed_once_and_prints_mean_std(tmp_path, capsys):
    jsonl = tmp_path / "out.jsonl"
    argv = [
        "--config", QUICKSTART, "--seeds", "1", "2", "--jsonl", str(jsonl),
        "--root-dir", str(tmp_path / "runs"), "--name", "tiny", "--metrics", "crps", "crps_sum",
        *[f"--set={a.removeprefix('--')}={b}" for a, b in zip(TINY[::2], TINY[1::2], strict=True)],
    ]  # fmt: skip
    records = evaluate_main(argv)
    assert [r["seed"] for r in records] == [1, 2] and records[0]["crps"] != records[1]["crps"]
    assert (tmp_path / "runs" / "tiny" / "seed2" / "checkpoints" / "best.json").is_file()
    assert records[0]["steps"] == 6 and records[0]["configs"] == [QUICKSTART]
    out = capsys.readouterr().out
    assert f"| crps | {format_mean_std(r['crps'] for r in records)} |" in out
    assert evaluate_main(argv) == records  # resumed: nothing refitted
    assert "recorded, skipped" in capsys.readouterr().out
    assert len(jsonl.read_text().splitlines()) == 2
    with pytest.raises(SystemExit):
        evaluate_main(["--config", QUICKSTART, "--jsonl", str(jsonl), "--set", "novalue"])


def test_fit_run_uses_the_config_forecaster_on_request(fitted):
    root, run = fitted
    again = reload_run(root, [*run_args(root), "--model.forecaster.init_args.hidden_size", "8"],
                       use_config_forecaster=True)  # fmt: skip
    assert isinstance(again.module, ForecastModule)
    assert again.module.forecaster is again.cli.model.forecaster
