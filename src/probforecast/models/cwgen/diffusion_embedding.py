r"""Diffusion-step (or flow-time) embedding: sinusoidal features of a scalar step, then an MLP.

``t [B]`` (any real values, e.g. integer DDPM steps ``0..T-1`` or ``1000 * tau`` for flow time
``tau in [0, 1]``) -> ``[B, dim]`` with

.. math::
    e(t) = \mathrm{MLP}\big([\sin(t\,\omega_k), \cos(t\,\omega_k)]_{k<dim/2}\big), \qquad
    \omega_k = \mathrm{max\_period}^{-2k/dim}

(the DDPM / Transformer positional encoding of ``t``; MLP = Linear, SiLU, Linear).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_step_features(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """``t [B] -> [B, dim]``: ``[sin(t w_k), cos(t w_k)]`` for ``k < dim // 2`` (zero-padded if odd)."""
    if t.dim() != 1:
        raise ValueError(f"t must be one value per window, shape [B]; got {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float().unsqueeze(-1) * freqs
    feats = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        feats = torch.nn.functional.pad(feats, (0, 1))
    return feats


class DiffusionStepEmbedding(nn.Module):
    """``t [B] -> [B, dim]`` (module docstring)."""

    def __init__(self, dim: int, hidden: int | None = None, max_period: float = 10_000.0):
        super().__init__()
        hidden = hidden or 4 * dim
        self.dim, self.max_period = dim, max_period
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal_step_features(t, self.dim, self.max_period))
