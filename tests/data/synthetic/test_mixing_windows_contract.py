"""SyntheticWindows and the allocation helpers against brute-force references, on small
in-memory corpora whose values encode (sample, channel, step): window starts and time-feature
offsets are uniform over every valid position, scaling is by the float64 mean / std of the
whole sample (1 for a constant channel), masks are boolean, mixed channels are permuted."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats

from probforecast.data.synthetic.mixing import (
    SyntheticWindows,
    largest_remainder,
    mixing_probability,
    split_sizes,
)


@dataclass
class Spec:
    name: str
    num_channels: int
    length: int


class ArrayCorpus:
    """The part of ``SyntheticCorpus`` that ``SyntheticWindows`` reads, over a float32 array
    ``[S, C, T]`` (what the store returns)."""

    def __init__(self, name: str, data: np.ndarray):
        self.data = np.asarray(data, np.float32)
        self.spec = Spec(name, self.data.shape[1], self.data.shape[2])

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        return self.data[index]


def coded(name: str, samples: int, channels: int, length: int, source: int) -> ArrayCorpus:
    """``value[s, c, t] = 1000 source + 100 s + 10 c + t / 100`` (exact enough in float32)."""
    s, c, t = np.meshgrid(np.arange(samples), np.arange(channels), np.arange(length), indexing="ij")
    return ArrayCorpus(name, 1000 * source + 100 * s + 10 * c + t / 100)


def brute_largest_remainder(weights, total):
    """Hamilton's method written out: floors, then one more for the largest remainders, ties to
    the earlier source."""
    weights = [float(w) for w in weights]  # float64 arithmetic whatever the input dtype
    quotas = [w / sum(weights) * total for w in weights]
    counts = [int(np.floor(q)) for q in quotas]
    rest = sorted(range(len(weights)), key=lambda m: (-(quotas[m] - counts[m]), m))
    for m in rest[: total - sum(counts)]:
        counts[m] += 1
    return counts


def test_largest_remainder_against_brute_force():
    rng = np.random.default_rng(0)
    cases = [((1, 3), 8), ((1.0, 1.0, 1.0), 4), ((2.0,), 7), ((5, 0, 5), 3), ((0.45, 0.35, 0.2), 7)]
    cases += [
        (tuple(rng.uniform(0, 3, rng.integers(2, 6))), int(rng.integers(1, 50))) for _ in range(200)
    ]
    cases += [((1.0,) * 40, 50), ((3.0,) * 33 + (1.0,) * 7, 61)]  # many ties
    # quarter remainders with ties among 20 sources (an unstable sort breaks them differently)
    quarters = (5, 7, 6, 4, 5, 7, 6, 4, 7, 6, 7, 4, 4, 7, 4, 6, 4, 5, 5, 5)
    cases += [(tuple(q / 4 for q in quarters), 27)]
    # float32 weights are used as float64 (in float32 the quotas 18.5 / 55.5 break the tie)
    cases += [(np.array([7, 2, 6, 5], np.float32), 185), (np.float32([0.3, 1 / 6, 0.5667]), 84)]
    for weights, total in cases:
        got = largest_remainder(weights, total)
        assert got.dtype == np.int64
        assert got.tolist() == brute_largest_remainder(weights, total), (weights, total)


@pytest.mark.parametrize("weights", [[-1.0, 3.0], [[1.0, 2.0], [3.0, 4.0]], [], [0.0, 0.0]])
def test_largest_remainder_rejects(weights):
    with pytest.raises(ValueError, match="non-negative and not all zero"):
        largest_remainder(weights, 5)


def test_mixing_probability_is_float64_for_any_index_dtype():
    index = np.arange(0, 1000, 7)
    want = np.minimum(1.0, np.log1p(2.0 * index.astype(np.float64) / 1000))
    for dtype in (np.int32, np.int64, np.float32, np.float64):
        got = mixing_probability(index.astype(dtype), 1000)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_split_sizes_brute_force_uniform():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(split_sizes(rng, 3, 3), [1, 1, 1])  # total == parts: all ones
    # total = 6 into 3 positive parts: C(5, 2) = 10 compositions, uniform (chi-square)
    comps = [c for c in itertools.product(range(1, 5), repeat=3) if sum(c) == 6]
    seen = [tuple(split_sizes(rng, 6, 3)) for _ in range(3000)]
    assert set(seen) == set(comps)
    assert stats.chisquare([seen.count(c) for c in comps]).pvalue > 1e-3


def windows(corpora, n=3, p=4, q=2, feat_len=9, epoch_len=400, **kw):
    feats = torch.arange(feat_len, dtype=torch.float64)[:, None].repeat(1, 2)
    return SyntheticWindows(corpora, n, p, q, feats, epoch_len, **kw)


def test_window_starts_and_feature_offsets_are_uniform():
    corpus = coded("a", 2, 3, 8, 0)  # width 6: starts 0..2
    data = windows([corpus], feat_len=9)  # offsets 0..3
    starts, offsets = [], []
    for i in range(400):
        item, _ = data.item_with_provenance(i)
        assert item["past_target"].shape == (4, 3) and item["future_target"].shape == (2, 3)
        assert item["past_time_feat"].shape == (4, 2) and item["future_time_feat"].shape == (2, 2)
        raw = torch.cat([item["past_target"], item["future_target"]]).double()
        raw = raw * item["scale"].double() + item["loc"].double()
        step = np.round((raw[:, 0].numpy() % 10) * 100).astype(int)
        np.testing.assert_array_equal(np.diff(step), 1)  # one contiguous slice
        starts.append(step[0])
        feats = torch.cat([item["past_time_feat"], item["future_time_feat"]])[:, 0]
        np.testing.assert_array_equal(np.diff(feats.numpy()), 1)
        offsets.append(int(feats[0]))
    assert stats.chisquare(np.bincount(starts, minlength=3)).pvalue > 1e-3
    assert len(np.bincount(starts)) == 3
    assert stats.chisquare(np.bincount(offsets, minlength=4)).pvalue > 1e-3
    assert len(np.bincount(offsets)) == 4


def test_scaling_uses_the_float64_moments_of_the_whole_sample():
    rng = np.random.default_rng(0)
    data = rng.normal(0.3, 1.0, (1, 3, 10)) * np.array([0.2, 5.0, 1.0])[None, :, None]
    data[0, 2] = 7.25  # a constant channel: scale 1
    corpus = ArrayCorpus("a", data)
    source = SyntheticWindows([corpus], 3, 3, 1, torch.zeros(10, 1), 5, seed=0)
    values = corpus[0].astype(np.float64)
    mean, std = values.mean(1), values.std(1)
    scale = np.where(std > 0, std, 1.0)
    assert scale[2] == 1.0 and scale[0] < 1 < scale[1]
    for i in range(5):
        item, _ = source.item_with_provenance(i)
        np.testing.assert_array_equal(item["loc"].numpy(), mean.astype(np.float32))
        np.testing.assert_array_equal(item["scale"].numpy(), scale.astype(np.float32))
        raw = torch.cat([item["past_target"], item["future_target"]]).numpy()  # [4, 3]
        start = int(np.flatnonzero(np.isclose(values[0], raw[0, 0] * scale[0] + mean[0]))[0])
        want = ((values[:, start : start + 4] - mean[:, None]) / scale[:, None]).T
        np.testing.assert_array_equal(raw, want.astype(np.float32))


def test_masks_ids_and_window_start():
    data = windows([coded("a", 2, 3, 8, 0)], epoch_len=4)
    item = data[0]
    assert item["past_observed"].dtype == torch.bool and item["past_observed"].all()
    assert item["future_observed"].dtype == torch.bool and item["future_observed"].shape == (2, 3)
    assert item["window_start"].dtype == torch.long and int(item["window_start"]) == 4
    np.testing.assert_array_equal(item["series_ids"].numpy(), [0, 1, 2])


def test_mixed_windows_of_two_sources_are_permuted():
    corpora = [coded("a", 2, 4, 8, 0), coded("b", 2, 4, 8, 1)]
    data = windows(corpora, n=4, epoch_len=200)
    tags = [data.item_with_provenance(i)[1] for i in range(100, 200)]  # late: mostly mixed
    mixed = [t for t in tags if len(set(t)) > 1]
    assert len(mixed) > 50
    unsorted = sum(np.any(np.diff(t) < 0) for t in mixed)
    assert unsorted > len(mixed) // 3  # a random order, not source 0's channels first


def test_default_seed_is_zero():
    corpora = [coded("a", 3, 3, 8, 0), coded("b", 3, 3, 8, 1)]
    default, zero = windows(corpora, epoch_len=20), windows(corpora, epoch_len=20, seed=0)
    for i in range(20):
        a, ta = default.item_with_provenance(i)
        b, tb = zero.item_with_provenance(i)
        np.testing.assert_array_equal(ta, tb)
        assert torch.equal(a["past_target"], b["past_target"])


def test_window_length_boundaries():
    exact = coded("a", 1, 3, 6, 0)  # length == P + Q is one window
    data = windows([exact], feat_len=6, epoch_len=3)
    assert data[0]["past_target"].shape == (4, 3)
    with pytest.raises(ValueError, match=r"synthetic length 5 < context \+ horizon 6"):
        windows([coded("a", 1, 3, 5, 0)])
    with pytest.raises(ValueError, match="time features are shorter than one window"):
        windows([exact], feat_len=5)
    with pytest.raises(ValueError, match="time features are shorter than one window"):
        windows([exact], p=4, q=1, feat_len=4)


def test_constructor_rejections():
    corpus = coded("narrow", 1, 3, 8, 0)
    with pytest.raises(ValueError, match="series_pool 2 < channels per window 3"):
        windows([corpus], series_pool=2)
    with pytest.raises(ValueError, match="corpus narrow has fewer than 4 channels"):
        windows([corpus], n=4)
    with pytest.raises(ValueError, match="mode must be 'progressive' or 'weighted'"):
        windows([corpus], mode="curriculum")
    for weights in (None, (1.0, 2.0)):
        with pytest.raises(ValueError, match=r"one weight per source \(1\)"):
            windows([corpus], mode="weighted", weights=weights)
    with pytest.raises(IndexError, match="index must be >= 0"):
        windows([corpus]).item_with_provenance(-1)
