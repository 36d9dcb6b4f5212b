"""``probforecast.api``: fit -> predict with timestamps -> load in a fresh object, for checkpoints of
``api.fit`` and of the CLI; the forecasts are checked against a hand-written sampling loop."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from probforecast import api
from probforecast.cli import ProbForecastCLI
from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GaussianRNN

P, Q, N = 48, 12, 4


def tiny_datamodule() -> ForecastDataModule:
    return ForecastDataModule(
        "synthetic",
        context_length=P,
        prediction_length=Q,
        num_batches_per_epoch=2,
        batch_size=8,
        synthetic=SyntheticOptions(num_series=N, length=400, num_test_windows=3),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("api")
    return api.fit(
        "GaussianRNN",
        tiny_datamodule(),
        max_epochs=2,
        num_samples=16,
        val_num_samples=8,
        root_dir=root,
        logger="csv",
        trainer_kwargs={"enable_progress_bar": False},
        hidden_size=8,
    )


def reference_samples(module, datamodule, num_samples: int) -> torch.Tensor:
    """The same forecasts by hand: every test batch, seeded draw, inverse scaling."""
    module.eval()
    with torch.no_grad():
        return torch.cat(
            [b.unscale(module.draw_samples(b, num_samples)) for b in datamodule.test_dataloader()]
        )


def test_fit_returns_best_weights_and_predicts_with_timestamps(trained):
    assert isinstance(trained.forecaster, GaussianRNN)
    assert trained.forecaster.target_dim == N and trained.forecaster.context_length == P
    assert trained.checkpoint_path and "crps" in trained.checkpoint_path, "best, not last"
    saved = torch.load(trained.checkpoint_path, weights_only=False)["state_dict"]
    for name, value in trained.module.state_dict().items():
        assert torch.equal(value, saved[name]), f"{name} differs from the best checkpoint"

    forecast = trained.predict()
    assert forecast.samples.shape == (3, 16, Q, N) and len(forecast) == 3
    expected = reference_samples(trained.module, trained.datamodule, 16).double().numpy()
    np.testing.assert_array_equal(forecast.samples, expected)
    dm = trained.datamodule
    starts = dm.split.test_starts
    assert forecast.window_start.tolist() == list(starts)
    for w, start in enumerate(starts):
        index = forecast.index[w]
        assert isinstance(index, pd.PeriodIndex) and len(index) == Q
        assert index[0] == dm.prepared.start + int(start), "first horizon step"
        assert (index[1:] - index[:-1] == index.freq).all(), "consecutive steps"
    assert forecast.series_names == list(dm.series_names)
    raw = dm.prepared.raw_values.numpy()  # [T, N], the dataset before any scaling
    for w, start in enumerate(starts):
        np.testing.assert_allclose(forecast.truth[w], raw[start : start + Q], rtol=1e-5)
        np.testing.assert_allclose(forecast.history[w], raw[start - P : start], rtol=1e-5)
    fig = forecast.plot(window=1, series=[0, 2])
    assert len([ax for ax in fig.axes if ax.lines]) == 2

    table = forecast.quantiles([0.1, 0.5, 0.9], window=1)
    assert table.index.equals(forecast.index[1])
    for j, name in enumerate(forecast.series_names):
        np.testing.assert_allclose(
            table[(name, 0.9)].to_numpy(), np.quantile(forecast.samples[1, :, :, j], 0.9, axis=0)
        )
    np.testing.assert_allclose(
        forecast.median(2).to_numpy(), np.median(forecast.samples[2], axis=0)
    )
    assert trained.predict(num_samples=4, max_windows=2).samples.shape == (2, 4, Q, N)


def test_load_reproduces_the_forecasts_in_a_new_object(trained):
    again = api.load(trained.checkpoint_path)
    assert again is not trained and again.module is not trained.module
    assert again.module.num_samples == 16, "module arguments restored"
    np.testing.assert_array_equal(again.predict().samples, trained.predict().samples)
    metrics = again.test()
    assert metrics["test/crps"] > 0 and np.isfinite(metrics["test/crps"])


@pytest.mark.slow
def test_load_a_cli_checkpoint(tmp_path):
    warnings.simplefilter("ignore")
    root = tmp_path / "cli"
    cli = ProbForecastCLI(
        args=[
            "fit",
            *("--data.dataset", "synthetic", "--data.context_length", str(P)),
            *("--data.prediction_length", str(Q), "--data.num_batches_per_epoch", "2"),
            *("--data.synthetic.num_series", str(N), "--data.synthetic.length", "400"),
            *(
                "--model.forecaster",
                "probforecast.models.GaussianRNN",
            ),
            *("--model.forecaster.init_args.hidden_size", "6", "--model.num_samples", "8"),
            *("--model.val_num_samples", "4", "--trainer.max_epochs", "1"),
            *("--trainer.default_root_dir", str(root), "--trainer.logger", "false"),
            *("--trainer.enable_progress_bar", "false", "--forecast_plot.every_n_val_epochs", "0"),
        ]
    )
    best = cli.trainer.checkpoint_callback.best_model_path
    loaded = api.load(best)
    assert loaded.forecaster.rnn.hidden_size == 6 and loaded.forecaster.target_dim == N
    expected = reference_samples(cli.model, cli.datamodule, 8).double().numpy()
    np.testing.assert_array_equal(loaded.predict().samples, expected)


def test_bad_input_fails_with_one_clear_message(tmp_path, trained):
    dm = tiny_datamodule()
    with pytest.raises(ValueError, match="unknown forecaster 'NoSuchModel'"):
        api.fit("NoSuchModel", dm)
    with pytest.raises(ValueError, match="not a probforecast Forecaster"):
        api.fit("torch.nn.Linear", dm)
    with pytest.raises(ValueError, match="logger must be"):
        api.fit("GaussianRNN", dm, logger="tensorboard", root_dir=tmp_path)
    with pytest.raises(ValueError, match="not found"):
        api.load(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match=r"levels must lie in \[0, 1\]"):
        trained.predict(max_windows=1).quantiles([1.5])
    with pytest.raises(ValueError, match="split must be"):
        trained.predict(split="train")


def test_load_restores_every_module_setting(trained, tmp_path):
    """Settings saved in the checkpoint come back, not the defaults (interval level, seeding
    scope, aggregation were dropped by a hand-written list before)."""
    ckpt = torch.load(trained.checkpoint_path, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"].update(
        interval_level=0.95,
        sample_seed_scope="batch",
        metric_aggregation="window_mean",
        quantile_method="rank",
        sample_seed=7,
    )
    path = tmp_path / "settings.ckpt"
    torch.save(ckpt, path)
    module = api.load(path).module
    assert module.sample_seed_scope == "batch" and module.sample_seed == 7
    assert "coverage_95" in module.test_metrics.keys(keep_base=True)
    assert module.test_metrics["crps"].aggregation == "window_mean"
    assert module.test_metrics["crps_quantile"].quantile_method == "rank"


class _RunsCode:
    """An object whose unpickling runs code (what weights_only=True refuses)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_a_checkpoint_that_would_run_code(trained, tmp_path):
    ckpt = torch.load(trained.checkpoint_path, map_location="cpu", weights_only=True)
    marker = tmp_path / "code_ran"
    ckpt["payload"] = _RunsCode(marker)
    path = tmp_path / "malicious.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        api.load(path)
    assert not marker.exists()
