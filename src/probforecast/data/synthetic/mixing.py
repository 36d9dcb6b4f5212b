"""Synthetic training windows: progressive interleaved mixing (Algorithm 3) and fixed mixture
weights (the allocation of Algorithm 2), as a training-data source of ``ForecastDataModule``.

Progressive mixing (spec-dynlmc §3.3, Eq. 5 with ``2i`` and a clamp): item ``i`` of an epoch of
``M`` windows is *mixed* with probability ``p(i) = min(1, log(1 + 2 i / M))``. A mixed window
takes one window from every source, draws channel split sizes ``(c_1..c_k)`` uniformly among the
compositions of ``N`` (two distinct cut points in ``1..N-1`` for three sources), concatenates
random channel subsets of those sizes and permutes the channels (past and future alike). A
non-mixed window comes from one source drawn uniformly.

Weighted mixing: mixture weights ``gamma`` on the simplex give ``n_m = floor(gamma_m M)``
windows per source plus the largest remainders (``sum_m n_m = M`` exactly), in shuffled order.

Every item is a deterministic function of ``(seed, epoch, i)``: dataset index ``g`` is item
``i = g mod M`` of epoch ``g // M`` (``utils.resumable.EpochIndexSampler`` yields those indices),
so every epoch draws fresh windows and each source's sample order and the weighted assignment
are reshuffled per epoch, reproducibly from the seed and in any worker process. Windows are
scaled per sample and channel (``loc``/``scale``: mean and std of the whole sample), like the
DataModule's scaler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from probforecast.data.synthetic.store import SyntheticCorpus


@dataclass
class SyntheticSourceOptions:
    """``data.train_source``: train on synthetic windows (validation/test stay on ``dataset``).

    Attributes:
        sources: corpus names (``kernelsynth``, ``lmc``, ``dynlmc_*``), generated with as many
            channels as the dataset has series.
        mode: ``progressive`` (Algorithm 3) or ``weighted`` (fixed ``weights``).
        weights: mixture weights for ``weighted`` (normalised to the simplex).
        num_samples: samples per source corpus. length: steps per sample.
        seed: corpus seed (window draws use the DataModule's seed).
    """

    sources: tuple[str, ...] = ("kernelsynth", "lmc", "dynlmc_combined")
    mode: Literal["progressive", "weighted"] = "progressive"
    weights: tuple[float, ...] | None = None
    num_samples: int = 8
    length: int = 512
    seed: int = 0


def mixing_probability(index: int | np.ndarray, epoch_len: int) -> np.ndarray | float:
    """``p(i) = min(1, log(1 + 2 i / M))`` (Eq. 5; reaches 1 at ``i = M (e - 1) / 2``)."""
    return np.minimum(1.0, np.log1p(2.0 * np.asarray(index, dtype=np.float64) / epoch_len))


def largest_remainder(weights, total: int) -> np.ndarray:
    """Integers ``n_m >= 0`` with ``sum n_m = total``: ``floor(gamma_m total)`` plus one for the
    largest fractional parts (``gamma = weights / sum(weights)``)."""
    gamma = np.asarray(weights, dtype=np.float64)
    if gamma.ndim != 1 or gamma.size == 0 or np.any(gamma < 0) or gamma.sum() <= 0:
        raise ValueError(f"mixture weights must be non-negative and not all zero; got {weights}")
    exact = gamma / gamma.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def split_sizes(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """Uniform composition of ``total`` into ``parts`` positive sizes (zeros allowed only when
    ``total < parts``)."""
    if total >= parts:
        cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False))
        return np.diff(np.concatenate([[0], cuts, [total]]))
    return np.bincount(rng.integers(parts, size=total), minlength=parts)


class SyntheticWindows(Dataset):
    """Training windows ``[P + Q, N]`` from synthetic corpora (see the module docstring).

    Args:
        corpora: one ``SyntheticCorpus`` per source (each with ``>= N`` channels).
        num_series: ``N``, channels per window. context_length: ``P``. prediction_length: ``Q``.
        time_feat: ``[T_f, F]`` time features to attach (a random slice per window).
        epoch_len: ``M``, the number of windows per epoch.
        series_pool: the number of series the model knows (``>= N``); each window's
            ``series_ids`` are a sorted random subset of ``range(series_pool)`` (all of
            ``range(N)`` when ``None`` or ``N``), as ``num_series_per_batch`` does on real data.
    """

    def __init__(
        self,
        corpora: list[SyntheticCorpus],
        num_series: int,
        context_length: int,
        prediction_length: int,
        time_feat: Tensor,
        epoch_len: int,
        mode: Literal["progressive", "weighted"] = "progressive",
        weights: tuple[float, ...] | None = None,
        seed: int = 0,
        series_pool: int | None = None,
    ) -> None:
        self.corpora, self.num_series = corpora, num_series
        self.series_pool = num_series if series_pool is None else series_pool
        if self.series_pool < num_series:
            raise ValueError(f"series_pool {self.series_pool} < channels per window {num_series}")
        self.p, self.q = context_length, prediction_length
        self.time_feat, self.epoch_len, self.mode, self.seed = (
            time_feat.float(),
            epoch_len,
            mode,
            seed,
        )
        for corpus in corpora:
            if corpus.spec.num_channels < num_series:
                raise ValueError(f"corpus {corpus.spec.name} has fewer than {num_series} channels")
            if corpus.spec.length < self.p + self.q:
                raise ValueError(
                    f"synthetic length {corpus.spec.length} < context + horizon {self.p + self.q}"
                )
        if time_feat.shape[0] < self.p + self.q:
            raise ValueError("the time features are shorter than one window")
        if mode not in ("progressive", "weighted"):
            raise ValueError(f"mode must be 'progressive' or 'weighted'; got {mode!r}")
        self._counts = None
        if mode == "weighted":
            if weights is None or len(weights) != len(corpora):
                raise ValueError(f"weighted mixing needs one weight per source ({len(corpora)})")
            self._counts = largest_remainder(weights, epoch_len)
        self._epoch_plan: tuple[int, list[np.ndarray], np.ndarray | None] | None = None
        self._stats: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.epoch_len

    def _plan(self, epoch: int) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Epoch ``epoch``'s sample order per source and (weighted mode) source per item."""
        if self._epoch_plan is None or self._epoch_plan[0] != epoch:
            rng = np.random.default_rng([self.seed, 7, epoch])
            order = [rng.permutation(len(c)) for c in self.corpora]
            assignment = None
            if self._counts is not None:
                sources = np.repeat(np.arange(len(self.corpora)), self._counts)
                assignment = rng.permutation(sources)
            self._epoch_plan = (epoch, order, assignment)
        return self._epoch_plan[1], self._epoch_plan[2]

    def _sample(
        self, source: int, epoch: int, index: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        corpus = self.corpora[source]
        sample_index = int(self._plan(epoch)[0][source][index % len(corpus)])
        values = np.asarray(corpus[sample_index], dtype=np.float64)  # [C, T]
        if (source, sample_index) not in self._stats:
            std = values.std(axis=1)
            self._stats[(source, sample_index)] = (values.mean(axis=1), np.where(std > 0, std, 1.0))
        return values, *self._stats[(source, sample_index)]

    def item_with_provenance(self, index: int) -> tuple[dict[str, Tensor], np.ndarray]:
        """The window of dataset index ``index`` (item ``index mod M`` of epoch ``index // M``)
        and the source of each of its ``N`` channels."""
        if index < 0:
            raise IndexError(f"synthetic window index must be >= 0; got {index}")
        epoch, index = divmod(int(index), self.epoch_len)
        rng = np.random.default_rng([self.seed, 11, epoch, index])
        n, width = self.num_series, self.p + self.q
        if self.mode == "weighted":
            assignment = self._plan(epoch)[1]
            assert assignment is not None  # weighted mode: __init__ set the per-source counts
            chosen = [int(assignment[index])]
            sizes = np.array([n])
        elif rng.random() < mixing_probability(index, self.epoch_len):
            chosen = list(range(len(self.corpora)))
            sizes = split_sizes(rng, n, len(chosen))
        else:
            chosen = [int(rng.integers(len(self.corpora)))]
            sizes = np.array([n])
        parts, locs, scales, tags = [], [], [], []
        for source, size in zip(chosen, sizes, strict=True):
            values, loc, scale = self._sample(source, epoch, index)
            cols = np.sort(rng.choice(values.shape[0], size=size, replace=False))
            start = int(rng.integers(0, values.shape[1] - width + 1))
            parts.append(values[cols, start : start + width])
            locs.append(loc[cols])
            scales.append(scale[cols])
            tags.append(np.full(size, source))
        perm = rng.permutation(n) if len(chosen) > 1 else np.arange(n)
        raw = np.concatenate(parts)[perm]  # [N, P+Q]
        loc, scale = np.concatenate(locs)[perm], np.concatenate(scales)[perm]
        scaled = torch.from_numpy(((raw - loc[:, None]) / scale[:, None]).T).float()
        offset = int(rng.integers(0, self.time_feat.shape[0] - width + 1))
        feats = self.time_feat[offset : offset + width]
        ones = torch.ones(width, n, dtype=torch.bool)
        series_ids = np.arange(n)
        if self.series_pool > n:
            series_ids = np.sort(rng.choice(self.series_pool, size=n, replace=False))
        item = {
            "past_target": scaled[: self.p],
            "past_observed": ones[: self.p],
            "past_time_feat": feats[: self.p],
            "future_time_feat": feats[self.p :],
            "future_target": scaled[self.p :],
            "future_observed": ones[self.p :],
            "series_ids": torch.from_numpy(series_ids).long(),
            "loc": torch.from_numpy(loc).float(),
            "scale": torch.from_numpy(scale).float(),
            "window_start": torch.tensor(self.p, dtype=torch.long),
        }
        return item, np.concatenate(tags)[perm]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.item_with_provenance(index)[0]
