"""The random draws of the GLS rolling sampler, one stream per window (``SampleNoise``)."""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.models.noise import SampleNoise


class PathNoise:
    """Draws for the ``(s b)`` rows of the sample paths (sample-major), from ``noise``."""

    def __init__(self, noise: SampleNoise, num_samples: int) -> None:
        self.noise, self.num_samples = noise, num_samples

    def normal(self, width: int, like: Tensor) -> Tensor:
        """``[(S B), width]`` standard normals, window ``b``'s rows from its own stream."""
        shape = (self.num_samples, self.noise.batch_size, width)
        eps = self.noise.randn(shape, window_dim=1, dtype=like.dtype, device=like.device)
        return eps.flatten(0, 1)

    def lowrank(self, loc: Tensor, factor: Tensor, diag: Tensor) -> Tensor:
        """One draw of ``N(loc, factor factor^T + diag(diag))`` per row: ``loc, diag [(S B), N]``,
        ``factor [(S B), N, R]``."""
        eps_r = self.normal(factor.shape[-1], factor)
        eps = self.normal(diag.shape[-1], diag)
        return loc + torch.einsum("...nr,...r->...n", factor, eps_r) + diag.sqrt() * eps
