"""Per-window reductions shared by the metrics: ``[B, ...] -> [B]`` float64 sums and counts."""

from __future__ import annotations

import torch
from torch import Tensor


def window_sum(values: Tensor) -> Tensor:
    """``[B, ...] -> [B]`` float64 sum over every axis but the first."""
    return values.flatten(1).sum(-1, dtype=torch.float64)


def window_observed(target: Tensor, mask: Tensor | None) -> Tensor:
    """``[B]`` bool: the window has at least one observed entry."""
    if mask is None:
        return torch.ones(target.shape[0], dtype=torch.bool, device=target.device)
    return mask.flatten(1).any(-1)


def window_count(target: Tensor, mask: Tensor | None) -> Tensor:
    """``[B]`` float64 number of observed entries per window."""
    if mask is None:
        size = target[0].numel() if target.shape[0] else 0
        return torch.full(
            (target.shape[0],), float(size), dtype=torch.float64, device=target.device
        )
    return window_sum(mask)
