"""Crash and resume: SIGKILL mid-epoch + ``--ckpt_path last`` = the uninterrupted run; a crash
during a checkpoint write leaves the previous ``last.ckpt`` loadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from probforecast.callbacks import ForecastCheckpoint
from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GaussianRNN
from probforecast.models.module import ForecastModule
from tests.conftest import REPO

BATCHES_PER_EPOCH = 5
EPOCHS = 2  # 10 steps, a checkpoint every 2: the final step is saved too


class SlowSteps(Callback):
    """Sleeps after every training batch, so the test can kill the run mid-epoch."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args) -> None:
        time.sleep(self.seconds)


def fit_args(root: Path) -> list[str]:
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "quickstart.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.max_epochs",
        str(EPOCHS),
        "--trainer.callbacks+=tests.integration.test_resume.SlowSteps",
        "--checkpoint.every_n_train_steps",
        "2",
        "--forecast_plot.every_n_val_epochs",
        "0",
        "--data.num_batches_per_epoch",
        str(BATCHES_PER_EPOCH),
        "--data.batch_size",
        "4",
        "--data.context_length",
        "24",
        "--data.prediction_length",
        "6",
        "--data.synthetic.num_series",
        "3",
        "--data.synthetic.length",
        "400",
        "--model.forecaster.init_args.hidden_size",
        "8",
        "--model.val_num_samples",
        "8",
        "--model.num_samples",
        "8",
    ]


def popen(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "probforecast", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-5000:]
    return out


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # our checkpoints allow it


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    reference = popen(fit_args(tmp_path / "ref"))
    victim = popen(fit_args(tmp_path / "victim"))
    last = tmp_path / "victim" / "checkpoints" / "last.ckpt"
    killed_at = None
    deadline = time.monotonic() + 240
    while killed_at is None and time.monotonic() < deadline:
        if victim.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{victim.stdout.read()[-4000:]}")
        if last.is_file():
            step = load(last)["global_step"]
            if step >= BATCHES_PER_EPOCH + 1:  # inside the second epoch
                victim.send_signal(signal.SIGKILL)
                killed_at = step
        time.sleep(0.05)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL and killed_at is not None
    saved = load(last)["global_step"]
    assert saved % BATCHES_PER_EPOCH != 0, "the checkpoint to resume from must lie mid-epoch"

    resumed = finish(popen([*fit_args(tmp_path / "victim"), "--ckpt_path", "last"]))
    assert "resuming epoch" in resumed or "Restored all states" in resumed
    finish(reference)

    a = load(tmp_path / "ref" / "checkpoints" / "last.ckpt")
    b = load(last)
    assert a["global_step"] == b["global_step"] == EPOCHS * BATCHES_PER_EPOCH
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    # the whole training state, not only the weights: Adam's moments and step count
    for key, value in a["optimizer_states"][0]["state"].items():
        got = b["optimizer_states"][0]["state"][key]
        for name in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(got[name], value[name], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- crash during a write
def tiny_fit(root: Path, callback: ModelCheckpoint) -> pl.Trainer:
    pl.seed_everything(0)
    dm = ForecastDataModule(
        "synthetic",
        context_length=12,
        prediction_length=4,
        batch_size=4,
        num_batches_per_epoch=2,
        synthetic=SyntheticOptions(num_series=2, length=200, num_test_windows=2),
    )
    dm.setup("fit")
    forecaster = GaussianRNN(
        target_dim=dm.target_dim,
        context_length=12,
        prediction_length=4,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        hidden_size=4,
        num_layers=1,
    )
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[callback],
        default_root_dir=root,
    )
    trainer.fit(ForecastModule(forecaster, num_samples=4), dm)
    return trainer


def crash_midway(checkpoint, path, storage_options=None):
    """Stand-in for Lightning's writer: half of the bytes reach ``path``, then the 'crash'."""
    import io

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    raise OSError("simulated crash during the checkpoint write")


@pytest.mark.parametrize(
    "atomic", [True, False], ids=["ForecastCheckpoint", "plain_ModelCheckpoint"]
)
def test_crash_during_write_keeps_previous_last_ckpt(tmp_path, monkeypatch, atomic):
    cls = ForecastCheckpoint if atomic else ModelCheckpoint
    callback = cls(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    trainer = tiny_fit(tmp_path, callback)
    last = tmp_path / "ck" / "last.ckpt"
    before = load(last)
    monkeypatch.setattr("lightning.fabric.plugins.io.torch_io._atomic_save", crash_midway)
    trainer.fit_loop.epoch_loop._batches_that_stepped += 1  # pretend there is a newer state
    with pytest.raises(OSError, match="simulated crash"):
        callback._save_checkpoint(trainer, str(last))
    if not atomic:  # the control: a plain in-place write leaves a corrupt last.ckpt
        with pytest.raises(Exception):  # noqa: B017 (any unpickling error)
            load(last)
        return
    after = load(last)
    assert after["global_step"] == before["global_step"]
    for key, value in before["state_dict"].items():
        assert torch.equal(after["state_dict"][key], value)
    assert callback._find_last_checkpoints(trainer) == {os.path.normpath(last)}


# ---------------------------------------------------------------------- the replaying loader
def test_epoch_replay_sampler_equals_the_carried_random_sampler():
    from torch.utils.data import RandomSampler

    from probforecast.utils.resumable import EpochReplaySampler

    carried = RandomSampler(
        range(50), replacement=True, num_samples=70, generator=torch.Generator().manual_seed(3)
    )
    passes = [list(carried) for _ in range(4)]  # what an uninterrupted run draws, epoch by epoch
    replay = EpochReplaySampler(50, 70, seed=3)
    for epoch, expected in enumerate(passes):
        assert replay.indices(epoch) == expected
    assert passes[0] != passes[1]


def test_resumable_loader_skips_the_batches_done_without_loading_them():
    from torch.utils.data import DataLoader, RandomSampler

    from probforecast.utils.resumable import make_resumable

    loaded = []

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            loaded.append(i)
            return i

    sampler = RandomSampler(
        Data(), replacement=True, num_samples=20, generator=torch.Generator().manual_seed(0)
    )
    loader = DataLoader(Data(), batch_size=4, sampler=sampler)
    state = {"now": (0, 0)}
    resumable = make_resumable(loader, lambda: state["now"])
    epochs = [[b.tolist() for b in resumable] for state["now"] in [(0, 0), (1, 0), (2, 0)]]
    state["now"] = (1, 3)  # restart inside epoch 1 after 3 of its 5 batches
    loaded.clear()
    assert [b.tolist() for b in resumable] == epochs[1][3:]
    assert len(loaded) == 2 * 4  # the skipped batches were never sliced
    assert resumable.state_dict() == {"epoch": 1, "batches_done": 3}


# ---------------------------------------------------------------------- last.ckpt after every epoch
@pytest.mark.parametrize("cls", [ForecastCheckpoint, ModelCheckpoint], ids=["ours", "lightning"])
def test_last_ckpt_follows_every_validation_not_only_improvements(tmp_path, cls):
    """With a zero learning rate the seeded validation scores are equal every epoch, so only
    epoch 0 is a top-1 improvement; ``last.ckpt`` must still hold the last epoch (Lightning's
    own callback writes it only alongside a top-k save: the control)."""
    dm = ForecastDataModule(
        "synthetic", context_length=48, prediction_length=4, batch_size=4,
        num_batches_per_epoch=2,
        synthetic=SyntheticOptions(num_series=2, length=300, num_test_windows=2),
    )  # fmt: skip
    dm.setup("fit")
    forecaster = GaussianRNN(dm.target_dim, 48, 4, dm.freq, dm.num_time_features,
                             hidden_size=4, num_layers=1)  # fmt: skip
    callback = cls(
        dirpath=tmp_path / "ck", monitor="val/crps", save_top_k=1, save_last=True,
        filename="best",
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[callback], default_root_dir=tmp_path,
    )  # fmt: skip
    frozen = ForecastModule(
        forecaster, optimizer=lambda p: torch.optim.SGD(p, lr=0.0), num_samples=4
    )
    trainer.fit(frozen, dm)
    assert load(tmp_path / "ck" / "best.ckpt")["epoch"] == 0
    assert load(tmp_path / "ck" / "last.ckpt")["epoch"] == (2 if cls is ForecastCheckpoint else 0)
