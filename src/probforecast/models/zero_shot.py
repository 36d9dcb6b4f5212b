"""A channel-mixing patch Transformer whose weights fit any number of series and any frequency.

Built for zero-shot transfer (issue 20): pretrained on synthetic corpora, evaluated on real
datasets it never saw. Nothing in it depends on the dataset:

- no series embedding and no time features (``target_dim`` and ``num_time_features`` are
  accepted, as every forecaster's data facts, and ignored), so one set of weights serves
  ETTh1 (7 series, hourly), weather (21 series, 10 minutes) or exchange_rate (8, daily);
- instance normalisation: each window and series is standardised by the mean ``m`` and std
  ``s`` of its observed context (``[B, 1, N]``), and the forecast is mapped back. ``s`` is
  floored at ``context_scale_floor`` (in the batch's scaled units: 0.1 = a tenth of a series'
  training std under the default standard scaling): a flat context (a rain gauge at 0, a
  stuck sensor) would otherwise blow its horizon up by ``1 / s`` in normalised units and one
  such window can dominate a training batch;
- two kinds of attention alternate (TimePFN-style): across the ``K`` patches of one series
  (temporal), then across the ``N`` series at one patch position (cross-series). The
  cross-series layers are permutation-equivariant in the series, so any ``N`` works.

Shapes: ``B`` windows, ``P`` context, ``Q`` horizon, ``N`` series, ``L`` patch length,
``K = ceil(P / L)`` patches (front-padded with the first step), ``D`` model width.

Per series the context ``x [P]`` (normalised, 0 where unobserved) and its mask are cut into
``K`` patches of ``L`` steps; ``[x_patch, mask_patch] (2L) -> D`` plus a learned position.
After the layers, the ``K D`` features of a series give the Gaussian of each horizon step:
``mu [Q]``, ``sigma = softplus(.) + min_scale`` ``[Q]`` (normalised units), independent over
steps and series given the context. Loss: Gaussian NLL of the observed horizon in normalised
units. Sampling: ``m + s (mu + sigma eps)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster, masked_mean
from probforecast.models.noise import SampleNoise
from probforecast.nn.patching import num_patches, patchify

__all__ = ["ZeroShotForecaster"]


def _encoder_layer(d_model: int, n_heads: int, dim_feedforward: int, dropout: float):
    return nn.TransformerEncoderLayer(
        d_model, n_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
    )


class ZeroShotForecaster(Forecaster):
    """See the module docstring.

    Args:
        patch_len: ``L``, steps per patch.
        d_model: ``D``. n_heads: attention heads. num_layers: temporal (+ cross-series) layers.
        dim_feedforward: width of each layer's MLP. dropout: in the layers.
        channel_mixing: interleave the cross-series attention layers (False: every series is
            forecast from its own context alone, a channel-independent model).
        min_scale: floor of ``sigma`` (normalised units).
        context_scale_floor: floor of the context std ``s`` (scaled units).
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        patch_len: int = 16,
        d_model: int = 32,
        n_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 64,
        dropout: float = 0.1,
        channel_mixing: bool = True,
        min_scale: float = 1e-3,
        context_scale_floor: float = 0.1,
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if min_scale <= 0 or context_scale_floor <= 0:
            raise ValueError(
                "min_scale and context_scale_floor must be > 0; "
                f"got {min_scale} and {context_scale_floor}"
            )
        self.patch_len, self.min_scale = patch_len, min_scale
        self.context_scale_floor = context_scale_floor
        k = num_patches(context_length, patch_len)
        self.embed = nn.Linear(2 * patch_len, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(k, d_model))
        self.temporal = nn.ModuleList(
            _encoder_layer(d_model, n_heads, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.cross_series = (
            nn.ModuleList(
                _encoder_layer(d_model, n_heads, dim_feedforward, dropout)
                for _ in range(num_layers)
            )
            if channel_mixing
            else None
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(k * d_model, 2 * prediction_length)

    def check_batch(self, batch: ForecastBatch) -> None:
        """Only the window geometry must match (any ``N``, time features ignored)."""
        p, q = batch.past_target.shape[1], batch.future_time_feat.shape[1]
        if p != self.context_length or q != self.prediction_length:
            raise ValueError(
                f"{type(self).__name__} was built for context_length={self.context_length}, "
                f"prediction_length={self.prediction_length}; got a batch with P={p}, Q={q}"
            )

    def context_statistics(self, batch: ForecastBatch) -> tuple[Tensor, Tensor]:
        """Mean ``m`` and (biased) std ``s`` ``[B, 1, N]`` of each series' observed context;
        ``s >= context_scale_floor``; a series without an observed context step gets ``m = 0,
        s = 1``."""
        w = batch.past_observed.to(batch.past_target.dtype)
        count = w.sum(1, keepdim=True)
        mean = (batch.past_target * w).sum(1, keepdim=True) / count.clamp_min(1)
        var = ((batch.past_target - mean).square() * w).sum(1, keepdim=True) / count.clamp_min(1)
        std = var.sqrt().clamp_min(self.context_scale_floor)
        return mean, torch.where(count > 0, std, torch.ones_like(var))

    def normalised_parameters(self, batch: ForecastBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``mu, sigma [B, Q, N]`` (normalised units) and the context's ``m, s [B, 1, N]``."""
        self.check_batch(batch)
        b, _, n = batch.past_target.shape
        mean, std = self.context_statistics(batch)
        observed = batch.past_observed.to(batch.past_target.dtype)
        x = (batch.past_target - mean) / std * observed
        series = rearrange(torch.stack([x, observed], -1), "b p n two -> (b n) p two")
        patches = patchify(series, self.patch_len)  # [(B N), K, L*2], time-major
        patches = rearrange(patches, "bn k (l two) -> bn k (two l)", two=2)
        tokens = self.embed(patches) + self.position  # [(B N), K, D]
        for i, layer in enumerate(self.temporal):
            tokens = layer(tokens)
            if self.cross_series is not None:
                across = rearrange(tokens, "(b n) k d -> (b k) n d", b=b)
                across = self.cross_series[i](across)
                tokens = rearrange(across, "(b k) n d -> (b n) k d", b=b)
        out = self.head(self.norm(tokens).flatten(1))  # [(B N), 2Q]
        mu, raw = rearrange(out, "(b n) (two q) -> two b q n", b=b, n=n, two=2)
        return mu, F.softplus(raw) + self.min_scale, mean, std

    def loss(self, batch: ForecastBatch) -> Tensor:
        mu, sigma, mean, std = self.normalised_parameters(batch)
        z = (batch.future_target - mean) / std
        nll = sigma.log() + 0.5 * ((z - mu) / sigma).square()
        return masked_mean(nll, batch.future_observed)

    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        noise = SampleNoise.resolve(noise, batch.batch_size)
        mu, sigma, mean, std = self.normalised_parameters(batch)
        b, q, n = mu.shape
        eps = noise.randn((b, num_samples, q, n), dtype=mu.dtype, device=mu.device)
        draws = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps  # [B, S, Q, N]
        return mean.unsqueeze(1) + std.unsqueeze(1) * draws
