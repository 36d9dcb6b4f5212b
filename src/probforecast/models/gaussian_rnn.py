"""A small DeepAR-style forecaster: one LSTM shared by all series, diagonal Gaussian output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster, masked_mean
from probforecast.models.noise import SampleNoise


class GaussianRNN(Forecaster):
    """Per-series autoregressive LSTM with a Gaussian head (Salinas et al., DeepAR, diagonal).

    Every series is its own sequence; the step-``t`` input is ``[z_{t-1}, o_{t-1}, x_t, e_i]``
    (previous scaled value, its observed flag, time features, series embedding) and the output is
    ``N(mu_t, sigma_t^2)`` for ``z_t`` with ``sigma_t = softplus(.) + min_scale``.

    Training maximises the likelihood of the observed steps of context and horizon (teacher
    forcing). Sampling runs the context with the truth, then feeds its own draws back for ``Q``
    steps, all ``S`` sample paths in one batched recurrence.

    Args:
        hidden_size: LSTM width.
        num_layers: LSTM layers.
        dropout: between LSTM layers.
        embedding_dim: series embedding width (0 disables it).
        min_scale: floor on ``sigma`` (scaled units).
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        hidden_size: int = 40,
        num_layers: int = 2,
        dropout: float = 0.1,
        embedding_dim: int = 8,
        min_scale: float = 1e-3,
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        self.embedding = nn.Embedding(target_dim, embedding_dim) if embedding_dim > 0 else None
        in_size = 2 + num_time_features + embedding_dim
        self.rnn = nn.LSTM(
            in_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size, 2)
        self.min_scale = min_scale

    def _inputs(
        self, prev: Tensor, prev_obs: Tensor, time_feat: Tensor, series_ids: Tensor
    ) -> Tensor:
        """``prev, prev_obs [B, T, N]``, ``time_feat [B, T, F]``, ``series_ids [B, N]``
        -> ``[(B N), T, 2 + F + E]``."""
        n, t = prev.shape[-1], prev.shape[1]
        parts = [
            rearrange(prev, "b t n -> (b n) t 1"),
            rearrange(prev_obs.to(prev.dtype), "b t n -> (b n) t 1"),
            repeat(time_feat, "b t f -> (b n) t f", n=n),
        ]
        if self.embedding is not None:
            parts.append(repeat(self.embedding(series_ids), "b n e -> (b n) t e", t=t))
        return torch.cat(parts, dim=-1)

    def _gaussian(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.head(hidden).unbind(-1)
        return mu, F.softplus(raw) + self.min_scale

    def loss(self, batch: ForecastBatch) -> Tensor:
        self.check_batch(batch)
        target = torch.cat([batch.past_target, batch.future_target], dim=1)  # [B, P+Q, N]
        observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)
        time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1)
        prev = F.pad(target[:, :-1], (0, 0, 1, 0))
        prev_obs = F.pad(observed[:, :-1], (0, 0, 1, 0))
        hidden, _ = self.rnn(self._inputs(prev, prev_obs, time_feat, batch.series_ids))
        mu, sigma = self._gaussian(hidden)  # [(B N), P+Q]
        z = rearrange(target, "b t n -> (b n) t")
        mask = rearrange(observed, "b t n -> (b n) t")
        nll = -torch.distributions.Normal(mu, sigma).log_prob(z)
        return masked_mean(nll[:, 1:], mask[:, 1:])

    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        self.check_batch(batch)
        noise = SampleNoise.resolve(noise, batch.batch_size)
        b, _, n = batch.past_target.shape
        s, q = num_samples, self.prediction_length
        prev = F.pad(batch.past_target, (0, 0, 1, 0))  # [B, P+1, N]: z_{t-1} for t = s-P .. s
        prev_obs = F.pad(batch.past_observed, (0, 0, 1, 0))
        feats = torch.cat([batch.past_time_feat, batch.future_time_feat[:, :1]], dim=1)
        hidden, state = self.rnn(self._inputs(prev, prev_obs, feats, batch.series_ids))
        mu, sigma = self._gaussian(hidden[:, -1])  # first horizon step, [(B N)]
        state = tuple(repeat(h, "l bn d -> l (s bn) d", s=s) for h in state)
        mu, sigma = repeat(mu, "bn -> (s bn)", s=s), repeat(sigma, "bn -> (s bn)", s=s)
        ids = repeat(batch.series_ids, "b n -> (s b) n", s=s)
        draws = []
        for step in range(q):
            eps = noise.randn((s, b, n), window_dim=1, dtype=mu.dtype, device=mu.device)
            z = mu + sigma * eps.reshape(-1)
            draws.append(z)
            if step + 1 == q:
                break
            z_in = rearrange(z, "(s b n) -> (s b) 1 n", s=s, b=b, n=n)
            feat = repeat(batch.future_time_feat[:, step + 1 : step + 2], "b t f -> (s b) t f", s=s)
            x = self._inputs(z_in, torch.ones_like(z_in, dtype=torch.bool), feat, ids)
            out, state = self.rnn(x, state)
            mu, sigma = self._gaussian(out[:, -1])
        paths = torch.stack(draws, dim=-1)  # [(S B N), Q]
        return rearrange(paths, "(s b n) q -> b s q n", s=s, b=b, n=n)
