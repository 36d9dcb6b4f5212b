"""VolDy-VAE learns a regime-switching scale (paper §IV, Fig. 3) on a seeded toy series."""

from __future__ import annotations

import math

import pytest
import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models import VolDyVAE

L, H, P = 48, 24, 12


def _series(length: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    """``y_t = sin(2 pi t / 24) + sigma_t eps_t``, sigma alternating 0.1 / 1.0 every 24 steps."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length, dtype=torch.float32)
    sigma = torch.where((t // 24) % 2 == 0, 0.1, 1.0)
    return torch.sin(2 * math.pi * t / 24) + sigma * torch.randn(length, generator=g), sigma


def _batch(y: torch.Tensor, starts: list[int]) -> ForecastBatch:
    w = torch.stack([y[s - L : s + H] for s in starts]).unsqueeze(-1)  # [B, L+H, 1]
    b, ones = len(starts), torch.ones_like(w, dtype=torch.bool)
    return ForecastBatch(
        w[:, :L], ones[:, :L], torch.zeros(b, L, 0), torch.zeros(b, H, 0), w[:, L:], ones[:, L:],
        torch.zeros(b, 1, dtype=torch.long), torch.zeros(b, 1), torch.ones(b, 1), torch.tensor(starts),
    )  # fmt: skip


@pytest.mark.slow
def test_predicted_scale_tracks_the_true_regime_scale():
    y, sigma = _series()
    torch.manual_seed(0)
    model = VolDyVAE(1, L, H, patch_len=P, latent_dim=16, mlp_hidden=32, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(250):
        opt.zero_grad()
        model.loss(_batch(y, torch.randint(L, 3000 - H, (32,), generator=g).tolist())).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
    model.eval()
    starts = list(range(3000, 3900, 7))  # held-out windows
    predicted = model.predictive_scale(_batch(y, starts), 8).mean(1).flatten()
    true = torch.stack([sigma[s : s + H] for s in starts]).flatten()
    assert torch.corrcoef(torch.stack([predicted, true]))[0, 1] > 0.85
    assert predicted[true == 1.0].mean() > 3 * predicted[true == 0.1].mean()
