"""Seasonal-naive forecaster with sampled residuals (a baseline with no trainable weights)."""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster
from probforecast.models.noise import SampleNoise

_SEASON_BY_FREQ = {
    "h": 24,
    "H": 24,
    "D": 7,
    "B": 5,
    "W": 52,
    "15min": 96,
    "10min": 144,
    "M": 12,
    "Q": 4,
}


def default_season_length(freq: str) -> int:
    return _SEASON_BY_FREQ.get(freq, 1)


class SeasonalNaive(Forecaster):
    """``y_{t+h} = y_{t+h-m k} + e``, ``k = ceil((h+1)/m)``; ``e`` resampled from the in-context
    seasonal residuals ``r_t = y_t - y_{t-m}`` of the same series.

    A residual is drawn for every step independently; so the spread at all horizons equals the
    one-season-ahead residual spread (a simple, honest baseline, not a calibrated model).

    Args:
        season_length: ``m``; default from ``freq`` (24 for hourly, 5 for business days, ...).
        residual_scale: multiplies the sampled residuals (1 = empirical).
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        season_length: int | None = None,
        residual_scale: float = 1.0,
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        m = season_length or default_season_length(freq)
        if m >= context_length:
            m = 1
        self.season_length = m
        self.residual_scale = residual_scale

    def point(self, past: Tensor) -> Tensor:
        """``[B, P, N] -> [B, Q, N]`` seasonal-naive point forecast."""
        m, q = self.season_length, self.prediction_length
        last_season = past[:, -m:]
        reps = -(-q // m)
        return last_season.repeat(1, reps, 1)[:, :q]

    def loss(self, batch: ForecastBatch) -> Tensor:
        self.check_batch(batch)
        return torch.zeros((), device=batch.past_target.device)

    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        self.check_batch(batch)
        noise = SampleNoise.resolve(noise, batch.batch_size)
        # [B, P, N] -> residuals [B, P-m, N]; masked residuals are not drawn.
        past, observed = batch.past_target, batch.past_observed
        m = self.season_length
        residuals = past[:, m:] - past[:, :-m]
        valid = observed[:, m:] & observed[:, :-m]
        b, r, n = residuals.shape
        q = self.prediction_length
        weights = valid.permute(0, 2, 1).float()  # [B, N, P-m]
        weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights))
        draws = noise.multinomial(weights, num_samples * q).reshape(b * n, num_samples * q)
        flat = residuals.permute(0, 2, 1).reshape(b * n, r)
        picked = torch.gather(flat, 1, draws).reshape(b, n, num_samples, q).permute(0, 2, 3, 1)
        return self.point(past).unsqueeze(1) + self.residual_scale * picked
