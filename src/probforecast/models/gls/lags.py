"""Lagged-value features, chosen by frequency as in GPVar / the GLS paper (spec-gls §1.3)."""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor


def default_lags(freq: str) -> list[int]:
    """Lags by data frequency: hourly [1, 24, 168], daily and business-daily [1, 7, 14] (the
    official code's choice for exchange_rate), sub-hourly [1, 2, 4, 12, 24, 48], otherwise [1]."""
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return [1]
    name = offset.name.upper()
    if name in ("H", "BH"):
        return [1, 24, 168]
    if name in ("D", "B", "C"):
        return [1, 7, 14]
    if name in ("T", "MIN", "S") or name.endswith("MIN"):
        return [1, 2, 4, 12, 24, 48]
    return [1]


def lagged_values(sequence: Tensor, lags: list[int], start: int) -> Tensor:
    """``sequence [B, T, N]`` -> ``[B, T - start, N, len(lags)]`` with entry ``[b, t, n, j] =
    sequence[b, start + t - lags[j], n]``. Requires ``start >= max(lags)``."""
    assert start >= max(lags), "the history must cover the largest lag"
    t = sequence.shape[1]
    return torch.stack([sequence[:, start - lag : t - lag] for lag in lags], dim=-1)
