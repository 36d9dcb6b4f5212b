"""Where a forecaster's sampling noise comes from: one random stream per window, or the global RNG.

``ForecastModule`` seeds each evaluation window by its start (``sample_seed_scope: window``) so
that a window's samples do not depend on the other windows of its batch, the batch size or the
number of processes. A forecaster that draws all of its sampling randomness through a
:class:`SampleNoise` (and says so with ``Forecaster.per_window_noise = True``) gets one
``sample`` call per batch with one ``torch.Generator`` per window, instead of one call per
window on a re-seeded global RNG.

Every draw names the axis of its result that indexes the batch's ``B`` windows
(``window_dim``). With per-window streams, window ``b``'s slice is drawn from generator ``b``
alone with the shape of the other axes, so it equals what a batch holding only that window
draws: the batched and the per-window evaluation give the same samples (up to the rounding of
batched matrix products).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["SampleNoise", "seeded_global_rng"]


class SampleNoise:
    """Noise for sampling a batch of ``batch_size`` windows.

    Build with :meth:`per_window` (one seeded generator per window) or :meth:`global_rng` (the
    global RNG, one draw for the whole batch: reproducible only for the same batch).
    """

    def __init__(self, batch_size: int, generators: Sequence[torch.Generator] | None) -> None:
        if generators is not None and len(generators) != batch_size:
            raise ValueError(
                f"SampleNoise needs one generator per window: {batch_size} windows, "
                f"got {len(generators)} generators"
            )
        self.batch_size = batch_size
        self.generators = None if generators is None else list(generators)

    @classmethod
    def per_window(cls, seeds: Sequence[int], device: torch.device | str = "cpu") -> SampleNoise:
        """One generator per window on ``device``, seeded with that window's seed."""
        device = torch.device(device)
        gens = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
        return cls(len(gens), gens)

    @classmethod
    def global_rng(cls, batch_size: int) -> SampleNoise:
        """Draws from the global RNG (the caller seeds it)."""
        return cls(batch_size, None)

    @classmethod
    def resolve(cls, noise: SampleNoise | None, batch_size: int) -> SampleNoise:
        """``noise`` checked against the batch, or the global RNG when it is ``None``."""
        if noise is None:
            return cls.global_rng(batch_size)
        if noise.batch_size != batch_size:
            raise ValueError(
                f"SampleNoise was built for {noise.batch_size} windows; the batch has {batch_size}"
            )
        return noise

    # ------------------------------------------------------------------ draws
    def _window_axis(self, shape: Sequence[int], window_dim: int, where: str) -> int:
        """``window_dim`` as a non-negative axis of ``shape``; raises, naming ``where``, unless
        that axis has the batch's windows."""
        dim = window_dim % len(shape) if len(shape) else 0
        if not len(shape) or shape[dim] != self.batch_size:
            raise ValueError(f"{where} {list(shape)} must be the batch's {self.batch_size} windows")
        return dim

    def _draw(
        self,
        shape: Sequence[int],
        window_dim: int,
        draw: Callable[[tuple[int, ...], torch.Generator | None], Tensor],
    ) -> Tensor:
        shape = tuple(int(s) for s in shape)
        where = f"SampleNoise: axis {window_dim} of the requested shape"
        dim = self._window_axis(shape, window_dim, where)
        if self.generators is None:
            return draw(shape, None)
        per_window = shape[:dim] + shape[dim + 1 :]
        return torch.stack([draw(per_window, g) for g in self.generators], dim=dim)

    def randn(
        self,
        shape: Sequence[int],
        window_dim: int = 0,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Standard normal draws of ``shape``; ``shape[window_dim]`` is the number of windows."""
        return self._standard(torch.randn, shape, window_dim, dtype, device)

    def rand(
        self,
        shape: Sequence[int],
        window_dim: int = 0,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Uniform ``[0, 1)`` draws of ``shape``; ``shape[window_dim]`` is the number of windows."""
        return self._standard(torch.rand, shape, window_dim, dtype, device)

    def _standard(self, fn, shape, window_dim, dtype, device) -> Tensor:
        return self._draw(
            shape, window_dim, lambda s, g: fn(s, generator=g, dtype=dtype, device=device)
        )

    def randn_like(self, x: Tensor, window_dim: int = 0) -> Tensor:
        return self.randn(x.shape, window_dim, dtype=x.dtype, device=x.device)

    def multinomial(self, weights: Tensor, num_draws: int) -> Tensor:
        """``[B, M, num_draws]`` category indices drawn with replacement from the rows of
        ``weights [B, M, K]`` (non-negative, each row with a positive sum)."""
        if weights.dim() != 3 or weights.shape[0] != self.batch_size:
            raise ValueError(
                f"SampleNoise.multinomial expects weights [B={self.batch_size}, M, K]; "
                f"got {list(weights.shape)}"
            )
        if self.generators is None:
            flat = torch.multinomial(weights.flatten(0, 1), num_draws, replacement=True)
            return flat.unflatten(0, weights.shape[:2])
        return torch.stack(
            [
                torch.multinomial(w, num_draws, replacement=True, generator=g)
                for w, g in zip(weights, self.generators, strict=True)
            ]
        )

    def standard_gamma(self, concentration: Tensor, window_dim: int = 0) -> Tensor:
        """``Gamma(concentration, 1)`` draws of ``concentration``'s shape.

        PyTorch's gamma sampler takes no generator, so each window's slice is drawn on the
        global RNG forked and seeded from that window's generator (the outer stream is kept).
        """
        if self.generators is None:
            return torch._standard_gamma(concentration)
        where = f"SampleNoise.standard_gamma: axis {window_dim} of"
        dim = self._window_axis(concentration.shape, window_dim, where)
        parts = []
        for alpha, gen in zip(concentration.unbind(dim), self.generators, strict=True):
            seed = int(torch.randint(0, 2**62, (), generator=gen, device=gen.device))
            with seeded_global_rng(seed, concentration.device):
                parts.append(torch._standard_gamma(alpha))
        return torch.stack(parts, dim=dim)


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device | str = "cpu"):
    """Run the body on the global RNG forked and seeded with ``seed``; the outer stream (and
    that of ``device`` when it is a CUDA device) is restored afterwards."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
