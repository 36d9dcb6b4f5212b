"""Synthetic training windows are fresh every epoch, reproducible from the seed, resumable
mid-epoch, and honour ``num_series_per_batch``."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from probforecast.data import ForecastDataModule
from probforecast.data.synthetic import CorpusSpec, SyntheticCorpus
from probforecast.data.synthetic.mixing import (
    SyntheticSourceOptions,
    SyntheticWindows,
    largest_remainder,
)
from probforecast.models import GaussianRNN
from probforecast.models.module import ForecastModule
from probforecast.utils.resumable import EpochIndexSampler

EPOCH = 12


def windows(root, mode="progressive", weights=None, seed=1, **kw) -> SyntheticWindows:
    spec = {"num_samples": 4, "num_channels": 6, "length": 64}
    corpora = [
        SyntheticCorpus(CorpusSpec(n, **spec), root).generate()
        for n in ("kernelsynth", "lmc", "dynlmc_combined")
    ]
    return SyntheticWindows(
        corpora, kw.pop("n", 6), 16, 8, torch.zeros(100, 2), EPOCH, mode, weights, seed, **kw
    )


def test_each_epoch_draws_new_windows_reproducibly(tmp_path):
    data = windows(tmp_path)
    again = windows(tmp_path)
    for i in range(EPOCH):
        first, second = data[i], data[EPOCH + i]
        assert not torch.equal(first["past_target"], second["past_target"]), i
        torch.testing.assert_close(again[EPOCH + i]["past_target"], second["past_target"])
    assert not torch.equal(data[0]["past_target"], windows(tmp_path, seed=2)[0]["past_target"])


def test_weighted_mixing_reshuffles_the_assignment_per_epoch(tmp_path):
    data = windows(tmp_path, "weighted", (0.2, 0.3, 0.5))
    tags = [
        np.array([data.item_with_provenance(e * EPOCH + i)[1][0] for i in range(EPOCH)])
        for e in range(3)
    ]
    want = largest_remainder((0.2, 0.3, 0.5), EPOCH)
    for t in tags:  # every epoch keeps the exact allocation ...
        np.testing.assert_array_equal(np.bincount(t, minlength=3), want)
    assert not (np.array_equal(tags[0], tags[1]) and np.array_equal(tags[1], tags[2]))  # ... order


def test_series_ids_are_a_subset_of_the_pool(tmp_path):
    data = windows(tmp_path, n=3, series_pool=6)
    ids = [data[i]["series_ids"] for i in range(EPOCH)]
    assert all(len(x) == 3 and torch.all(x[1:] > x[:-1]) and x.max() < 6 for x in ids)
    assert len({tuple(x.tolist()) for x in ids}) > 1
    torch.testing.assert_close(windows(tmp_path)[0]["series_ids"], torch.arange(6))


def test_epoch_index_sampler_follows_set_epoch_and_progress():
    sampler = EpochIndexSampler(4)
    assert list(sampler) == [0, 1, 2, 3]
    sampler.set_epoch(2)
    assert list(sampler) == [8, 9, 10, 11] and len(sampler) == 4
    assert list(EpochIndexSampler(3, progress=lambda: (5, 0))) == [15, 16, 17]


def datamodule(tmp_path, **kw) -> ForecastDataModule:
    kw.setdefault("num_batches_per_epoch", 2)
    return ForecastDataModule(
        "synthetic",
        context_length=16,
        prediction_length=8,
        cache_dir=str(tmp_path),
        batch_size=3,
        train_source=SyntheticSourceOptions(num_samples=2, length=48),
        **kw,
    )


def test_datamodule_loader_changes_with_the_epoch_and_subsets_series(tmp_path):
    dm = datamodule(tmp_path, num_series_per_batch=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    epoch0 = [b.past_target for b in loader]
    loader.sampler.set_epoch(1)
    epoch1 = [b.past_target for b in loader]
    assert epoch0[0].shape == (3, 16, 2) and dm.target_dim > 2
    assert not any(torch.equal(a, b) for a, b in zip(epoch0, epoch1, strict=True))
    assert next(iter(loader)).series_ids.max() < dm.target_dim


class RecordBatches(Callback):
    def __init__(self) -> None:
        self.seen: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.seen[trainer.global_step] = batch.past_target.clone()


def fit(tmp_path, dm, callbacks, ckpt_path=None) -> None:
    pl.seed_everything(0)
    forecaster = GaussianRNN(
        target_dim=dm.target_dim,
        context_length=16,
        prediction_length=8,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        hidden_size=4,
        num_layers=1,
    )
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )
    trainer.fit(ForecastModule(forecaster, num_samples=4), dm, ckpt_path=ckpt_path)


def test_a_run_resumed_mid_epoch_draws_the_uninterrupted_windows(tmp_path):
    dm = datamodule(tmp_path / "cache", num_batches_per_epoch=3)
    full = RecordBatches()
    saver = ModelCheckpoint(tmp_path / "ck", every_n_train_steps=1, save_top_k=-1)
    fit(tmp_path, dm, [full, saver])
    assert sorted(full.seen) == list(range(6))
    assert not torch.equal(full.seen[0], full.seen[3])  # epoch 2 is not a replay of epoch 1
    mid_epoch_two = next((tmp_path / "ck").glob("*step=4.ckpt"))
    resumed = RecordBatches()
    fit(tmp_path, datamodule(tmp_path / "cache", num_batches_per_epoch=3), [resumed], mid_epoch_two)
    assert sorted(resumed.seen) == [4, 5]
    for step, batch in resumed.seen.items():
        torch.testing.assert_close(batch, full.seen[step], rtol=0, atol=0)
