"""Named corpora (deterministic, chunked, resumable cache), the registry datasets through the
DataModule, and the mixing source (schedule, provenance, allocation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from probforecast.data import DataError, ForecastDataModule
from probforecast.data.loading import GeneratorOptions
from probforecast.data.synthetic import CorpusSpec, SyntheticCorpus, generate_sample
from probforecast.data.synthetic.mixing import (
    SyntheticSourceOptions,
    SyntheticWindows,
    largest_remainder,
    mixing_probability,
    split_sizes,
)

SMALL = {"num_samples": 5, "num_channels": 4, "length": 64, "chunk_size": 2}


def test_corpus_is_deterministic_chunked_and_resumable(tmp_path):
    corpus = SyntheticCorpus(CorpusSpec("dynlmc_lag", seed=3, **SMALL), tmp_path)
    assert not corpus.complete and corpus.num_chunks == 3
    corpus.generate()
    assert corpus.complete and len(corpus) == 5
    for i in range(5):
        alone = generate_sample("dynlmc_lag", i, 4, 64, 3).series.astype(np.float32)
        np.testing.assert_array_equal(corpus[i], alone)
        assert corpus.metadata(i)["index"] == i
    first = np.array(corpus[4])
    # an interrupted run: one chunk missing, a stray temporary file of a half-written chunk
    (corpus.directory / "chunk_00002.npy").unlink()
    (corpus.directory / "chunk_00002.npy.tmp-x").write_bytes(b"partial")
    again = SyntheticCorpus(CorpusSpec("dynlmc_lag", seed=3, **SMALL), tmp_path)
    assert again.missing_chunks() == [2]
    with pytest.raises(FileNotFoundError, match="incomplete"):
        again[4]
    again.generate()
    np.testing.assert_array_equal(again[4], first)
    other = SyntheticCorpus(CorpusSpec("dynlmc_lag", seed=4, **SMALL), tmp_path)
    assert other.directory != corpus.directory
    with pytest.raises(ValueError, match="unknown synthetic corpus"):
        CorpusSpec("dynlmc_spiky").check()


@pytest.mark.parametrize(
    "name", ["kernelsynth", "lmc", "dynlmc_drift", "dynlmc_lag", "dynlmc_regime", "dynlmc_combined"]
)
def test_registry_datasets_load_in_the_datamodule(name, tmp_path):
    dm = ForecastDataModule(
        name,
        context_length=24,
        prediction_length=12,
        cache_dir=str(tmp_path),
        generator=GeneratorOptions(num_samples=2, num_channels=3, length=128),
        batch_size=2,
        num_batches_per_epoch=1,
    )
    dm.setup("fit")
    assert dm.target_dim == 6 and dm.freq == "h"
    raw = dm.prepared.raw_values.numpy()  # [T, N]: the corpus samples stacked along series
    corpus = SyntheticCorpus(CorpusSpec(name, 2, 3, 128, 0, 50), tmp_path)
    np.testing.assert_allclose(raw[:, :3].T, corpus[0], rtol=1e-6)
    np.testing.assert_allclose(raw[:, 3:].T, corpus[1], rtol=1e-6)
    batch = next(iter(dm.train_dataloader()))
    assert batch.past_target.shape == (2, 24, 6)


def test_bad_generator_options_fail_clearly(tmp_path):
    dm = ForecastDataModule(
        "lmc", cache_dir=str(tmp_path), generator=GeneratorOptions(num_channels=0)
    )
    with pytest.raises(DataError, match="num_channels"):
        dm.setup("fit")


def test_mixing_schedule():
    m = 1500
    p = mixing_probability(np.arange(m), m)
    assert p[0] == 0 and np.all(np.diff(p) >= 0) and p.max() == 1.0
    np.testing.assert_allclose(p[:1289], np.log1p(2 * np.arange(1289) / m))
    assert p[1288] < 1 and p[1289] == 1.0  # reaches 1 at i = M (e - 1) / 2 = 1288.6


def test_largest_remainder_and_split_sizes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        gamma = rng.dirichlet(np.ones(4))
        total = int(rng.integers(1, 500))
        counts = largest_remainder(gamma, total)
        assert counts.sum() == total and np.all(np.abs(counts - gamma * total) < 1)
        sizes = split_sizes(rng, 10, 3)
        assert sizes.sum() == 10 and sizes.min() >= 1
    with pytest.raises(ValueError, match="non-negative"):
        largest_remainder([0.0, 0.0], 5)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    names = ("kernelsynth", "lmc", "dynlmc_combined")
    spec = {"num_samples": 4, "num_channels": 6, "length": 64}
    return [SyntheticCorpus(CorpusSpec(n, **spec), root).generate() for n in names]


def test_progressive_mixing_follows_the_schedule(corpora):
    epoch = 600
    data = SyntheticWindows(corpora, 6, 16, 8, torch.zeros(100, 2), epoch, seed=1)
    tags = [data.item_with_provenance(i)[1] for i in range(epoch)]
    mixed = np.array([len(set(t)) > 1 for t in tags])
    for low in range(0, epoch, 150):  # mixed fraction per bin vs the mean of p over the bin
        want = mixing_probability(np.arange(low, low + 150), epoch).mean()
        k = int(mixed[low : low + 150].sum())
        assert stats.binomtest(k, 150, want).pvalue > 1e-3
    full = [t for t, m in zip(tags, mixed, strict=True) if m]
    assert all(len(t) == 6 and set(t) == {0, 1, 2} for t in full)
    single = np.array([t[0] for t, m in zip(tags, mixed, strict=True) if not m])
    assert stats.chisquare(np.bincount(single, minlength=3)).pvalue > 1e-3
    item, tag = data.item_with_provenance(int(np.flatnonzero(mixed)[0]))
    assert item["past_target"].shape == (16, 6) and item["future_target"].shape == (8, 6)
    # the same channel selection and permutation for past and future: every channel of the
    # unscaled [past; future] window is one contiguous slice of one channel of its source
    raw = torch.cat([item["past_target"], item["future_target"]]) * item["scale"] + item["loc"]
    for c, source in enumerate(tag):
        assert _is_a_slice_of(raw[:, c], corpora[source]), f"channel {c} (source {source})"


def _is_a_slice_of(series: torch.Tensor, corpus) -> bool:
    """Whether ``series [T]`` equals ``corpus[k][channel, start : start + T]`` for some k,
    channel and start (float32 tolerance)."""
    t = series.shape[0]
    for k in range(len(corpus)):
        sample = torch.from_numpy(np.asarray(corpus[k], np.float64)).float()  # [C, L]
        windows = sample.unfold(1, t, 1)  # [C, L - T + 1, T]
        if ((windows - series).abs().amax(-1) < 1e-4).any():
            return True
    return False


def test_scaled_windows_are_consistent_with_the_corpus(corpora):
    data = SyntheticWindows(
        corpora, 6, 16, 8, torch.zeros(100, 2), 10, mode="weighted", weights=(0.0, 1.0, 0.0), seed=0
    )
    item, tag = data.item_with_provenance(3)
    assert set(tag) == {1}
    raw = torch.cat([item["past_target"], item["future_target"]]) * item["scale"] + item["loc"]
    found = False
    for k in range(len(corpora[1])):  # the raw window is a contiguous slice of one LMC sample
        sample = torch.from_numpy(np.asarray(corpora[1][k], np.float64)).float()
        for start in range(64 - 24 + 1):
            if torch.allclose(raw.T, sample[:, start : start + 24], atol=1e-4):
                found = True
    assert found


def test_weighted_allocation_is_exact(corpora):
    data = SyntheticWindows(
        corpora,
        6,
        16,
        8,
        torch.zeros(100, 2),
        101,
        mode="weighted",
        weights=(0.2, 0.3, 0.5),
        seed=2,
    )
    counts = np.bincount([data.item_with_provenance(i)[1][0] for i in range(101)], minlength=3)
    np.testing.assert_array_equal(counts, largest_remainder((0.2, 0.3, 0.5), 101))


def test_train_source_in_the_datamodule(tmp_path):
    dm = ForecastDataModule(
        "synthetic",
        context_length=16,
        prediction_length=8,
        cache_dir=str(tmp_path),
        batch_size=3,
        num_batches_per_epoch=2,
        train_source=SyntheticSourceOptions(num_samples=2, length=48),
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2 and batches[0].past_target.shape == (3, 16, dm.target_dim)
    assert batches[0].past_time_feat.shape[-1] == dm.num_time_features
    bad = ForecastDataModule(
        "synthetic",
        context_length=40,
        prediction_length=24,
        cache_dir=str(tmp_path),
        train_source=SyntheticSourceOptions(length=48),
    )
    bad.setup("fit")
    with pytest.raises(DataError, match="train_source"):
        bad.train_dataloader()


def test_parallel_generation_equals_serial(tmp_path):
    spec = CorpusSpec("dynlmc_drift", seed=1, **SMALL)
    serial = SyntheticCorpus(spec, tmp_path / "a").generate()
    parallel = SyntheticCorpus(spec, tmp_path / "b").generate(workers=2)
    for i in range(len(serial)):
        np.testing.assert_array_equal(serial[i], parallel[i])
