"""Named synthetic corpora, generated deterministically and cached on disk in chunks.

A corpus is ``num_samples`` independent samples ``[N, T]`` of one generator. Sample ``i`` is drawn
from ``SeedSequence(seed, spawn_key=(i,))`` (= ``SeedSequence(seed).spawn(n)[i]``), so it can be
regenerated alone and chunks can be generated in any order or in parallel.

On disk (``<cache>/synthetic/<name>-c<N>-t<T>-s<seed>-<version>/``): ``corpus.json`` (the spec)
and per chunk ``chunk_00000.json`` (per-sample params and kernel expressions) then
``chunk_00000.npy`` (float32 ``[chunk, N, T]``). Both are written to temporary files and renamed
into place, ``.npy`` last: a chunk exists only when complete, so an interrupted generation
resumes at the first missing chunk and a half-written cache is never read as complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from probforecast.data.synthetic.dynlmc import generate_dynlmc
from probforecast.data.synthetic.kernels import BANK_VERSION, to_json
from probforecast.data.synthetic.lmc import kernel_synth, lmc_synth
from probforecast.data.synthetic.sample import DynLMCSample

log = logging.getLogger(__name__)
FORMAT_VERSION = 1

GENERATORS: dict[str, Callable[..., DynLMCSample]] = {
    "kernelsynth": lambda n, t, seed: kernel_synth(n, t, seed),
    "lmc": lambda n, t, seed: lmc_synth(n, t, seed),
    "dynlmc_drift": lambda n, t, seed: generate_dynlmc(n, t, "drift", seed),
    "dynlmc_lag": lambda n, t, seed: generate_dynlmc(n, t, "lag", seed),
    "dynlmc_regime": lambda n, t, seed: generate_dynlmc(n, t, "regime", seed),
    "dynlmc_combined": lambda n, t, seed: generate_dynlmc(n, t, "combined", seed),
}


def generate_sample(name: str, index: int, num_channels: int, length: int, seed: int):
    """Sample ``index`` of corpus ``name`` (with its ground truth), regenerated alone."""
    if name not in GENERATORS:
        raise ValueError(f"unknown synthetic corpus {name!r}; expected one of {sorted(GENERATORS)}")
    return GENERATORS[name](num_channels, length, np.random.SeedSequence(seed, spawn_key=(index,)))


@dataclass(frozen=True)
class CorpusSpec:
    """What identifies a corpus (defaults: the paper's 1500 x 160 x 1024)."""

    name: str
    num_samples: int = 1500
    num_channels: int = 160
    length: int = 1024
    seed: int = 0
    chunk_size: int = 50

    def check(self) -> None:
        if self.name not in GENERATORS:
            raise ValueError(
                f"unknown synthetic corpus {self.name!r}; expected one of {sorted(GENERATORS)}"
            )
        for field in ("num_samples", "num_channels", "chunk_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1; got {getattr(self, field)}")
        if self.length < 2:
            raise ValueError(f"length must be >= 2; got {self.length}")


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _save_npy(path: Path, values: np.ndarray) -> None:
    """``np.save`` into ``path`` as named (``np.save(str)`` would append ``.npy``), the file
    closed before the caller renames it."""
    with path.open("wb") as handle:
        np.save(handle, values)


def _build_chunk(spec: CorpusSpec, chunk: int) -> tuple[np.ndarray, list[dict]]:
    first = chunk * spec.chunk_size
    indices = range(first, min(first + spec.chunk_size, spec.num_samples))
    values, meta = [], []
    for i in indices:
        s = generate_sample(spec.name, i, spec.num_channels, spec.length, spec.seed)
        values.append(s.series.astype(np.float32))
        meta.append({"index": i, **s.params, "kernels": [to_json(k) for k in s.kernels]})
    return np.stack(values), meta


class SyntheticCorpus:
    """A chunked on-disk corpus; ``generate()`` fills (or resumes) it, ``[i]`` reads sample i."""

    def __init__(self, spec: CorpusSpec, cache_dir: str | os.PathLike) -> None:
        spec.check()
        self.spec = spec
        text = json.dumps({**asdict(spec), "bank": BANK_VERSION, "format": FORMAT_VERSION})
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        self.directory = (
            Path(cache_dir)
            / "synthetic"
            / f"{spec.name}-c{spec.num_channels}-t{spec.length}-s{spec.seed}-{digest}"
        )
        self._chunks: dict[int, np.ndarray] = {}

    @property
    def num_chunks(self) -> int:
        return -(-self.spec.num_samples // self.spec.chunk_size)

    def _npy(self, chunk: int) -> Path:
        return self.directory / f"chunk_{chunk:05d}.npy"

    def missing_chunks(self) -> list[int]:
        return [c for c in range(self.num_chunks) if not self._npy(c).is_file()]

    @property
    def complete(self) -> bool:
        return not self.missing_chunks()

    def generate(self, workers: int = 1, progress: Callable[[int, int], None] | None = None):
        """Generate the missing chunks (``workers`` processes); returns ``self``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        spec_file = self.directory / "corpus.json"
        if not spec_file.is_file():
            payload = {**asdict(self.spec), "bank": BANK_VERSION, "format": FORMAT_VERSION}
            _atomic_write(spec_file, lambda p: p.write_text(json.dumps(payload, indent=1)))
        todo = self.missing_chunks()
        if todo:
            log.info(
                "generating %d chunks of %s into %s", len(todo), self.spec.name, self.directory
            )
        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(workers) as pool:
                futures = {c: pool.submit(_build_chunk, self.spec, c) for c in todo}
                for done, (chunk, future) in enumerate(futures.items(), 1):
                    self._store(chunk, *future.result())
                    if progress:
                        progress(done, len(todo))
        else:
            for done, chunk in enumerate(todo, 1):
                self._store(chunk, *_build_chunk(self.spec, chunk))
                if progress:
                    progress(done, len(todo))
        return self

    def _store(self, chunk: int, values: np.ndarray, meta: list[dict]) -> None:
        meta_path = self.directory / f"chunk_{chunk:05d}.json"
        _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta)))
        _atomic_write(self._npy(chunk), lambda p: _save_npy(p, values))

    def __len__(self) -> int:
        return self.spec.num_samples

    def chunk(self, chunk: int) -> np.ndarray:
        if chunk not in self._chunks:
            path = self._npy(chunk)
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: run SyntheticCorpus.generate() (the corpus is incomplete)"
                )
            self._chunks[chunk] = np.load(path, mmap_mode="r")
        return self._chunks[chunk]

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample ``index`` as float32 ``[N, T]`` (memory-mapped)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} outside [0, {len(self)})")
        return self.chunk(index // self.spec.chunk_size)[index % self.spec.chunk_size]

    def metadata(self, index: int) -> dict:
        chunk = index // self.spec.chunk_size
        meta = json.loads((self.directory / f"chunk_{chunk:05d}.json").read_text())
        return meta[index % self.spec.chunk_size]


def load_corpus(
    name: str, cache_dir: str | os.PathLike, workers: int = 1, **spec_fields
) -> SyntheticCorpus:
    """The corpus ``name`` (``CorpusSpec`` fields as keywords), generated on first use."""
    return SyntheticCorpus(CorpusSpec(name, **spec_fields), cache_dir).generate(workers)
