"""Distribution heads shared by the low-rank Gaussian forecasters (GPVar, Transformer)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LowRankGaussianHead(nn.Module):
    """Per-series head ``h [..., H] -> (mu [...], factor [..., R], diag [...])``.

    As pytorch-forecasting's ``MultivariateNormalDistributionLoss`` (the GLS code's head):
    one ``Linear(H, 2 + R)``; ``mu = p_0``; ``d = softplus(p_1 + b) + sigma_min^2`` with
    ``b = softplus^{-1}(sigma_init^2)`` (``d`` is a *variance*); ``L_row = p_{2:} / sqrt(R)``.
    Stacking the rows of a time step over series gives ``Sigma_t = L_t L_t^T + diag(d_t)``.
    """

    def __init__(
        self, hidden_size: int, rank: int, sigma_init: float = 1.0, sigma_min: float = 1e-3
    ):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1; got {rank}")
        self.rank = rank
        self.proj = nn.Linear(hidden_size, 2 + rank)
        self.diag_bias = math.log(math.expm1(sigma_init**2))
        self.diag_floor = sigma_min**2

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.proj(hidden)
        mu = out[..., 0]
        diag = F.softplus(out[..., 1] + self.diag_bias) + self.diag_floor
        factor = out[..., 2:] / math.sqrt(self.rank)
        return mu, factor, diag


class MixtureWeightHead(nn.Module):
    """``h [..., H] -> w [..., M]``, softmax weights of the correlation components
    (``Linear(H, M)`` + softmax, the GLS code's default single layer)."""

    def __init__(self, hidden_size: int, num_components: int):
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_components)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.softmax(self.proj(hidden), dim=-1)


class ARCoefficientHead(nn.Module):
    """``h [..., H] -> phi [..., p]`` in (-1, 1) via tanh (the GLS code's AR(p) correlation)."""

    def __init__(self, hidden_size: int, order: int):
        super().__init__()
        self.proj = nn.Linear(hidden_size, order)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.proj(hidden))
