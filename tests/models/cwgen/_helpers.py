"""Tiny batches and forecaster builders shared by the CW-Gen tests."""

from __future__ import annotations

import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models.cwgen import JMCESpec

P, Q, N, F = 16, 8, 3, 2
SMALL_JMCE = dict(d_model=16, n_heads=2, e_layers=1, d_layers=1, d_ff=32, dropout=0.0)
SMALL_NET = dict(d_model=16, n_heads=2, num_layers=1, d_ff=32)


def small_jmce(checkpoint=None, cov_window: int = 7, **fields) -> JMCESpec:
    """The tests' small JMCE prior (``SMALL_JMCE`` sizes), optionally from ``checkpoint``."""
    return JMCESpec(
        None if checkpoint is None else str(checkpoint),
        cov_window=cov_window,
        **{**SMALL_JMCE, **fields},
    )


def facts(p: int = P, q: int = Q, n: int = N, f: int = F) -> dict:
    return dict(target_dim=n, context_length=p, prediction_length=q, num_time_features=f)


def make_batch(past: torch.Tensor, future: torch.Tensor, f: int = F) -> ForecastBatch:
    """A ForecastBatch from ``past [B, P, N]`` and ``future [B, Q, N]`` (time features: a ramp)."""
    b, p, n = past.shape
    q = future.shape[1]
    ramp = torch.linspace(-0.5, 0.5, p + q).reshape(1, -1, 1).expand(b, p + q, f)
    return ForecastBatch(
        past_target=past,
        past_observed=torch.ones_like(past, dtype=torch.bool),
        past_time_feat=ramp[:, :p].contiguous(),
        future_time_feat=ramp[:, p:].contiguous(),
        future_target=future,
        future_observed=torch.ones_like(future, dtype=torch.bool),
        series_ids=torch.arange(n).expand(b, n),
        loc=torch.zeros(b, n),
        scale=torch.ones(b, n),
        window_start=torch.arange(b),
    )


def random_batch(b: int = 4, seed: int = 0) -> ForecastBatch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, P + Q, N, generator=g).cumsum(1) * 0.3
    return make_batch(x[:, :P], x[:, P:])


TIMEDIFF_NET = {
    "class_path": "probforecast.models.cwgen.networks.TimeDiffNet",
    "init_args": dict(inp_embed=8, step_dim=8, channels=8, layers_inp=2, layers_I=2, layers_II=2),
}
FLOWTS_NET = {
    "class_path": "probforecast.models.cwgen.networks.FlowTSNet",
    "init_args": dict(d_model=8, n_heads=2, e_layers=1, d_layers=1, mlp_times=2),
}


class RecordingNet(torch.nn.Module):
    """A custom network for the contract tests: ``out = x * w + history mean``; counts its calls
    and keeps the data facts it was built with."""

    calls = 0

    def __init__(self, target_dim, context_length, prediction_length, num_time_features, gain=1.0):
        super().__init__()
        self.facts = (target_dim, context_length, prediction_length, num_time_features)
        self.w = torch.nn.Parameter(torch.full((target_dim,), float(gain)))

    def condition(self, history, future_time_feat):
        return history.mean(1, keepdim=True)  # [B, 1, N]

    def forward(self, x, t, history, cond):
        type(self).calls += 1
        return x * self.w + cond
