"""Per-series scalers fitted on the training range only."""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor

log = logging.getLogger(__name__)

ScalingKind = Literal["standard", "mean", "none"]
_MIN_SCALE = 1e-8


def fit_scaler(values: Tensor, observed: Tensor, kind: ScalingKind) -> tuple[Tensor, Tensor]:
    """Fit a per-series affine scaler ``scaled = (raw - loc) / scale``.

    Args:
        values: ``[T, N]`` raw values of the fitting range (NaN allowed where unobserved).
        observed: ``[T, N]`` bool mask.
        kind: ``standard`` (loc = mean, scale = std), ``mean`` (loc = 0, scale = mean |x|, as
            GluonTS' MeanScaler) or ``none``.

    Returns:
        ``loc [N]`` and ``scale [N]``. A series with zero spread (constant, or fully unobserved)
        gets scale 1 so that nothing divides by zero; this is logged.
    """
    n = values.shape[1]
    if kind == "none":
        return torch.zeros(n, dtype=values.dtype), torch.ones(n, dtype=values.dtype)
    x = torch.where(observed, values, torch.zeros_like(values))
    count = observed.sum(0).clamp_min(1).to(values.dtype)
    if kind == "standard":
        loc = x.sum(0) / count
        centred = torch.where(observed, values - loc, torch.zeros_like(values))
        scale = (centred.square().sum(0) / count).sqrt()
    elif kind == "mean":
        loc = torch.zeros(n, dtype=values.dtype)
        scale = x.abs().sum(0) / count
    else:
        raise ValueError(f"scaling must be one of 'standard', 'mean', 'none'; got {kind!r}")
    degenerate = scale < _MIN_SCALE
    if degenerate.any():
        log.warning(
            "%d series have zero spread on the training range (constant or unobserved); "
            "their scale is set to 1: %s",
            int(degenerate.sum()),
            degenerate.nonzero().flatten().tolist()[:20],
        )
        scale = torch.where(degenerate, torch.ones_like(scale), scale)
    return loc, scale


def observed_std(values: Tensor) -> Tensor:
    """``[N]`` population standard deviation over time of ``values [T, N]`` (raw scale, NaN where
    unobserved), each series over its observed entries only; 0 for a series with none."""
    mask = torch.isfinite(values)
    count = mask.sum(0).clamp_min(1)
    mean = torch.where(mask, values, 0.0).sum(0) / count
    return (torch.where(mask, values - mean, 0.0).square().sum(0) / count).sqrt()
