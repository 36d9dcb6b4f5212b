"""Bad input through the CLI entry point (in-process ``probforecast.cli.main``): each case ends
in one clear line on stderr and a non-zero exit, or is handled correctly, never silently wrong.

The DataModule-level checks (NaN/Inf masking, constant series, short series, CSV columns and
dates, ``num_series_per_batch``) are unit-tested in ``tests/data/test_datamodule.py``; here the
same inputs go through the whole command, plus configs and checkpoints."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from probforecast.cli import main
from probforecast.models.base import Forecaster
from tests.conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


def tiny(root: Path) -> list[str]:
    return [
        "--config",
        QUICKSTART,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.max_epochs",
        "1",
        "--forecast_plot.every_n_val_epochs",
        "0",
        "--data.num_batches_per_epoch",
        "2",
        "--data.batch_size",
        "4",
        "--data.context_length",
        "24",
        "--data.prediction_length",
        "6",
        "--data.synthetic.num_series",
        "3",
        "--data.synthetic.length",
        "300",
        "--data.synthetic.num_test_windows",
        "2",
        "--model.forecaster.init_args.hidden_size",
        "4",
        "--model.val_num_samples",
        "4",
        "--model.num_samples",
        "4",
    ]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("PROBFORECAST_FLUSH_DENORMAL", "0")  # keep the process' float mode
    monkeypatch.setenv("WANDB_MODE", "disabled")
    warnings.simplefilter("ignore")


def fails(capsys, args: list[str]) -> str:
    """Run the CLI, expect a non-zero exit; return stderr (checked to be one clear message)."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """``last.ckpt`` of a tiny GaussianRNN fit on 3 synthetic series."""
    root = tmp_path_factory.mktemp("fit")
    warnings.simplefilter("ignore")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBFORECAST_FLUSH_DENORMAL", "0")
        mp.setenv("WANDB_MODE", "disabled")
        main(["fit", *tiny(root)])
    return root / "checkpoints" / "last.ckpt"


# ---------------------------------------------------------------------- configs
def test_unknown_model_class(tmp_path, capsys):
    err = fails(
        capsys,
        ["fit", *tiny(tmp_path), "--model.forecaster.class_path", "probforecast.models.NoSuch"],
    )
    assert "NoSuch" in err


def test_config_file_with_a_wrong_type(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  batch_size: many\n")
    err = fails(capsys, ["fit", *tiny(tmp_path), "--config", str(bad)])
    assert "batch_size" in err and "many" in err


def test_config_missing_the_required_forecaster(tmp_path, capsys):
    bad = tmp_path / "no_model.yaml"
    bad.write_text("data:\n  dataset: synthetic\n")
    err = fails(capsys, ["fit", "--config", str(bad), "--trainer.default_root_dir", str(tmp_path)])
    assert "forecaster" in err


def test_num_series_per_batch_larger_than_n(tmp_path, capsys):
    err = fails(capsys, ["fit", *tiny(tmp_path), "--data.num_series_per_batch", "7"])
    assert err.strip().endswith("must lie in [1, 3] (the dataset has 3 series)")


def test_unsorted_dates_in_a_csv(tmp_path, capsys):
    frame = _frame(200)
    path = tmp_path / "u.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    err = fails(capsys, ["fit", *tiny(tmp_path), "--data.dataset", str(path)])
    assert "not sorted ascending" in err and len(err.strip().splitlines()) == 1


def _frame(length: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2021-01-01", periods=length, freq="h")
    values = np.sin(np.arange(length)[:, None] / 4 + np.arange(3)) + 0.1 * rng.normal(
        size=(length, 3)
    )
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d %H:%M:%S"),
            "a": values[:, 0],
            "b": values[:, 1],
            "c": values[:, 2],
        }
    )


def test_nan_inf_and_constant_series_train_and_test_to_finite_metrics(tmp_path, capsys):
    """NaN/Inf are masked, a constant series gets unit scale: fit and test complete and the
    metrics are finite (nothing NaN leaks into the loss or the metrics)."""
    frame = _frame(400)
    frame.loc[50:80, "a"] = np.nan
    frame.loc[120:125, "b"] = np.inf
    frame.loc[200, "b"] = -np.inf
    frame["c"] = 3.0
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    args = [*tiny(tmp_path), "--data.dataset", str(path)]
    main(["fit", *args])
    main(["test", *args, "--ckpt_path", "last"])
    out = capsys.readouterr().out
    assert "test/crps" in out and "nan" not in out.lower().split("test/crps")[1][:40]


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_of_another_model(tmp_path, capsys, checkpoint):
    err = fails(
        capsys,
        [
            "test",
            *tiny(tmp_path),
            "--model.forecaster.class_path",
            "probforecast.models.SeasonalNaive",
            "--ckpt_path",
            str(checkpoint),
        ],
    )
    assert "holds a probforecast.models.GaussianRNN model" in err
    assert "SeasonalNaive" in err


def test_checkpoint_with_another_target_dim(tmp_path, capsys, checkpoint):
    err = fails(
        capsys,
        [
            "test",
            *tiny(tmp_path),
            "--data.synthetic.num_series",
            "5",
            "--ckpt_path",
            str(checkpoint),
        ],
    )
    assert "trained with target_dim=3, but the data gives target_dim=5" in err


def test_checkpoint_that_is_not_ours(tmp_path, capsys):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    err = fails(capsys, ["test", *tiny(tmp_path), "--ckpt_path", str(garbage)])
    assert "cannot be read safely as a probforecast checkpoint" in err

    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    err = fails(capsys, ["test", *tiny(tmp_path), "--ckpt_path", str(other)])
    assert "is not a Lightning checkpoint (no 'state_dict' entry)" in err


class _Payload:
    """Unpickling this would create a file: ``weights_only=True`` must refuse it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path, capsys):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {}, "x": _Payload(str(marker))},
        evil,
        pickle_protocol=pickle.HIGHEST_PROTOCOL,
    )
    assert not marker.exists()
    err = fails(capsys, ["test", *tiny(tmp_path), "--ckpt_path", str(evil)])
    assert "cannot be read safely" in err and not marker.exists()


def test_our_checkpoints_load_with_weights_only(checkpoint):
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["probforecast"]["forecaster"].endswith("GaussianRNN")
    assert state["probforecast"]["target_dim"] == 3


class Exploding(Forecaster):
    """A forecaster whose loss is +inf (its constructor is the base's: linked data facts)."""

    def loss(self, batch):
        return batch.past_target.sum() * 0 + float("inf")

    def sample(self, batch, num_samples):
        raise NotImplementedError


def test_non_finite_loss_stops_the_cli_with_one_line(tmp_path, capsys):
    args = [
        *("fit", *tiny(tmp_path), "--trainer.num_sanity_val_steps", "0"),
        "--model.forecaster.class_path",
        f"{__name__}.Exploding",
    ]
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 3 and "Traceback" not in err
    assert err.startswith("probforecast: numerical error: Exploding.loss returned inf at epoch 0")
    assert "batch 0, step 0" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("forecaster", "option", "value", "choices"),
    [
        ("probforecast.models.CWFlow", "solver", "rk4", "heun"),
        ("probforecast.models.CWDiff", "parameterization", "v", "eps"),
        ("probforecast.models.CWDiff", "prior", "gaussian", "standard"),
        ("probforecast.models.CWFlow", "whitening", "pca", "cholesky"),
    ],
)
def test_a_choice_outside_its_options_is_refused_by_the_parser(
    tmp_path, capsys, forecaster, option, value, choices
):
    """Choices are ``Literal`` types, so the CLI names the valid options before building
    anything."""
    err = fails(
        capsys,
        [
            "fit",
            *tiny(tmp_path),
            "--model.forecaster",
            forecaster,
            f"--model.forecaster.init_args.{option}",
            value,
        ],
    )
    assert f'Parser key "{option}"' in err and "Expected a typing.Literal[" in err
    assert f"'{choices}'" in err and f"Got value: {value}" in err
