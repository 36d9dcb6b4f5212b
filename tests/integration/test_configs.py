"""Every YAML config loads through the CLI parser and runs one training + one validation step."""

from __future__ import annotations

import warnings

import pytest
import yaml

from probforecast.cli import ProbForecastCLI
from probforecast.data import DATASETS
from tests.conftest import REPO, SHARED_DATA, config_needs_real_data, have_real_data
from tests.models.cwgen.jmce_fixture import jmce_checkpoint_args

ALL_CONFIGS = sorted(
    p.relative_to(REPO).as_posix()
    for p in (REPO / "configs").rglob("*.yaml")
    if p.parent.name not in ("trainer", "sweeps", "horizons", "protocols", "overlays")
)
#: CW-Gen's configs run in ``test_configs_cwgen.py`` (a second file, so that ``pytest -n 2
#: --dist loadfile`` can put the two halves on different workers).
CWGEN_FOLDERS = ("configs/cw_diff/", "configs/cw_flow/", "configs/jmce/")
CONFIGS = [c for c in ALL_CONFIGS if not c.startswith(CWGEN_FOLDERS)]


def _needs_data(config: str) -> bool:
    return config_needs_real_data(config)


def _one_val_window(config: str) -> list[str]:
    """The option that limits validation to one window under the config's split protocol
    (setting an option the protocol does not read is an error)."""
    data = yaml.safe_load((REPO / config).read_text()).get("data", {})
    if data.get("protocol") == "probts":  # every window kept; one stride spans the range
        return ["--data.val_stride", "1000000"]
    dataset = data.get("dataset")
    protocol = DATASETS[dataset].protocol if dataset in DATASETS else "rolling"
    return ["--data.num_val_windows" if protocol == "rolling" else "--data.max_val_windows", "1"]


def _few_sampling_steps(config: str) -> list[str]:
    """CW generators validate with 2 sampler steps here (DDIM 50 steps of a full-size network
    is the slowest part of a one-step run; the sampler itself is tested in tests/models/cwgen)."""
    if config.startswith(("configs/cw_diff/", "configs/cw_flow/")):
        return ["--model.forecaster.init_args.sampling_steps", "2"]
    return []


def _validates_nll_only(config: str) -> bool:
    """GLS paper configs validate the NLL only (``val_num_samples: 0``, as the official code);
    the one-step run keeps that, their sampling is run by the test stage elsewhere."""
    model = yaml.safe_load((REPO / config).read_text()).get("model", {})
    return model.get("val_num_samples") == 0


def run_one_step(config: str, tmp_path, cache_dir) -> None:
    """Load ``config`` through the CLI parser and run one training + one validation step."""
    if _needs_data(config) and not have_real_data():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    warnings.simplefilter("ignore")
    cli = ProbForecastCLI(
        args=[
            "--config",
            str(REPO / config),
            "--data.root",
            str(SHARED_DATA),
            "--data.cache_dir",
            str(cache_dir),
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--trainer.logger",
            "false",
            "--trainer.fast_dev_run",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--model.val_num_samples",
            "0" if _validates_nll_only(config) else "2",
            *_one_val_window(config),
            "--data.batch_size",
            "2",
            "--data.eval_batch_size",
            "1",
            "--forecast_plot.every_n_val_epochs",
            "0",
            *jmce_checkpoint_args(REPO / config, tmp_path, SHARED_DATA, cache_dir),
            *_few_sampling_steps(config),
        ],
        run=False,
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 1  # fast_dev_run: one training step ran
    assert "val/loss" in cli.trainer.callback_metrics
    if not _validates_nll_only(config):
        assert "val/crps" in cli.trainer.callback_metrics


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_config_runs_one_step(config, tmp_path, shared_cache_dir):
    run_one_step(config, tmp_path, shared_cache_dir)


@pytest.mark.realdata
def test_horizon_overlay_stacks_on_a_dataset_config(tmp_path):
    """Configs in ``horizons/`` folders are overlays, not standalone: one stacks on a dataset
    config and sets the horizon of both the data and the linked forecaster."""
    if not have_real_data():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs" / "voldy_vae" / "etth1.yaml")),
            *("--config", str(REPO / "configs" / "voldy_vae" / "horizons" / "h192.yaml")),
            *("--data.root", str(SHARED_DATA), "--data.cache_dir", str(tmp_path / "cache")),
            *("--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"),
        ],
        run=False,
    )
    assert cli.datamodule.prediction_length == 192
    assert cli.model.forecaster.prediction_length == 192


@pytest.mark.parametrize(
    ("model_config", "overlay", "protocol", "aggregation", "test_windows"),
    [
        ("gaussian_rnn/etth1.yaml", "probts.yaml", "probts_ett", "window_mean", 30),
        ("voldy_vae/etth1.yaml", "ltsf_stride1.yaml", "ett", "pooled", 2785),
    ],
)
def test_protocol_overlays_switch_split_and_aggregation(
    model_config, overlay, protocol, aggregation, test_windows, tmp_path
):
    """``protocols/probts.yaml`` and ``protocols/ltsf_stride1.yaml`` switch a config between
    ProbTS' protocol (stride 96, mean of window ratios) and ours (stride 1, pooled ratios)."""
    if not have_real_data():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs" / model_config)),
            *("--config", str(REPO / "configs" / "protocols" / overlay)),
            *("--data.root", str(SHARED_DATA), "--data.cache_dir", str(tmp_path / "cache")),
            *("--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"),
        ],
        run=False,
    )
    cli.datamodule.setup("fit")
    assert cli.datamodule.protocol_name == protocol
    assert len(cli.datamodule.split.test_starts) == test_windows
    assert cli.model.test_metrics["crps"].aggregation == aggregation


def test_voldy_small_data_overlays_stack_on_a_csv(tmp_path):
    """``voldy_vae/overlays/ili.yaml`` (L = 36, H = 24) and ``small_data.yaml`` (one-pass epochs,
    sigma in data units) stack on a VolDy-VAE dataset config for a user's weekly CSV."""
    import numpy as np
    import pandas as pd

    dates = pd.date_range("2002-01-01", periods=966, freq="W-TUE")
    values = np.random.default_rng(0).gamma(2.0, 1.0, (966, 7)).cumsum(0)
    frame = pd.DataFrame(values, columns=[f"s{i}" for i in range(7)])
    frame.insert(0, "date", dates)
    csv = tmp_path / "weekly.csv"
    frame.to_csv(csv, index=False)
    overlays = REPO / "configs" / "voldy_vae" / "overlays"
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs" / "voldy_vae" / "etth1.yaml")),
            *("--config", str(overlays / "ili.yaml")),
            *("--config", str(overlays / "small_data.yaml")),
            *("--data.dataset", str(csv), "--data.protocol", "default"),
            *("--data.cache_dir", str(tmp_path / "cache")),
            *("--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"),
        ],
        run=False,
    )
    dm = cli.datamodule
    dm.setup("fit")
    assert (dm.context_length, dm.prediction_length) == (36, 24)
    assert cli.model.forecaster.context_length == 36 and cli.model.forecaster.rescale_sigma
    assert dm.num_batches_per_epoch is None
    assert dm.batches_per_epoch == -(-(int(0.7 * 966) - 36 - 24 + 1) // 64)
