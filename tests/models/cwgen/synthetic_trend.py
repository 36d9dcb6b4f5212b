"""Heteroscedastic, cross-correlated windows with a strong linear trend (the CW benefit test).

Window ``w``, series ``i``, step ``t = 0..P+Q-1``:
``x_{t,i} = c_i + a_i t + s e_{t,i}``, ``e_t ~ N(0, R)`` i.i.d. over time, ``R_{ij} = rho^{[i != j]}``,
with ``c_i ~ U(-3, 3)``, ``a_i ~ U(-0.25, 0.25)`` and the scale ``s = exp(U(log 0.15, log 1.2))``
drawn per window: the conditional law of the horizon given the history is
``N(c + a t, s^2 R)`` per step, and ``||mu||`` is large (the regime where Theorem 1 favours CW).
"""

from __future__ import annotations

import math

import torch

from probforecast.data.batch import ForecastBatch
from tests.models.cwgen._helpers import make_batch


def trend_windows(
    num: int, p: int, q: int, n: int = 3, rho: float = 0.8, seed: int = 0
) -> tuple[ForecastBatch, torch.Tensor, torch.Tensor]:
    """``(batch, true_mu [B, Q, N], true_cov [B, N, N])``."""
    g = torch.Generator().manual_seed(seed)
    c = 6 * torch.rand(num, 1, n, generator=g) - 3
    a = 0.5 * torch.rand(num, 1, n, generator=g) - 0.25
    log_s = math.log(0.15) + (math.log(1.2) - math.log(0.15)) * torch.rand(num, 1, 1, generator=g)
    s = log_s.exp()
    corr = torch.full((n, n), rho) + (1 - rho) * torch.eye(n)
    chol = torch.linalg.cholesky(corr)
    t = torch.arange(p + q, dtype=torch.float32).reshape(1, -1, 1)
    e = torch.randn(num, p + q, n, generator=g) @ chol.T
    x = c + a * t + s * e
    mu = (c + a * t)[:, p:]
    cov = s.reshape(-1, 1, 1) ** 2 * corr
    return make_batch(x[:, :p], x[:, p:], f=0), mu, cov
