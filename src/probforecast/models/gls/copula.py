"""Gaussian-copula marginal transform of GPVar (Salinas et al., NeurIPS 2019, Sec. 4.2).

Per window and series the marginal is the empirical CDF of the ``m`` observed context values,
Winsorised as in the paper::

    F~(v) = clamp(F^(v), delta_m, 1 - delta_m),   F^(v) = #{context values <= v} / m,
    delta_m = 1 / (4 m^{1/4} sqrt(pi log m)),

and the model works on ``xi(v) = Phi^{-1}(F~(v))``, which is approximately standard normal per
series. Samples go back through the inverse: ``u = Phi(z)``, then the empirical quantile
function, linear between the order statistics ``x_(k)`` placed at ``u = k / m`` (so every context
value whose CDF is not clipped round-trips exactly) and constant beyond ``x_(1)`` and ``x_(m)``:
samples never leave the range of the context, as in GPVar.

The transform is a fixed function of the window's context: the Gaussian NLL of the transformed
values differs from the NLL of the raw values by a Jacobian term that does not depend on the
model's parameters, so training on the transformed values is GPVar's objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

_NORMAL = torch.distributions.Normal(0.0, 1.0)


def winsorization_level(m: Tensor) -> Tensor:
    """``delta_m = 1 / (4 m^{1/4} sqrt(pi log m))`` (GPVar Eq. 9), for ``m >= 2`` observations."""
    m = m.clamp_min(2).to(torch.float64)
    return (1.0 / (4.0 * m.pow(0.25) * torch.sqrt(math.pi * torch.log(m)))).clamp(max=0.49)


@dataclass
class EmpiricalCopula:
    """Fitted per-(window, series) empirical marginals.

    Attributes:
        sorted_values: ``[B, N, P]`` observed context values in ascending order, unobserved
            entries replaced by ``+inf`` (so they sort last and are never counted).
        count: ``[B, N]`` number ``m`` of observed context values (``>= 1``; a series with none is
            given one pseudo-observation at 0, i.e. the transform is then the constant 0).
    """

    sorted_values: Tensor
    count: Tensor

    @classmethod
    def fit(cls, context: Tensor, observed: Tensor) -> EmpiricalCopula:
        """``context, observed [B, P, N]`` -> the per-(window, series) empirical marginals."""
        values = torch.where(observed, context, torch.full_like(context, math.inf))
        values = rearrange(values, "b p n -> b n p")
        count = observed.sum(dim=1)  # [B, N]
        empty = count == 0
        if empty.any():
            values = values.clone()
            values[..., 0] = torch.where(empty, torch.zeros_like(values[..., 0]), values[..., 0])
            count = torch.where(empty, torch.ones_like(count), count)
        return cls(torch.sort(values, dim=-1).values.contiguous(), count)

    def _clip(self) -> tuple[Tensor, Tensor]:
        delta = winsorization_level(self.count).to(self.sorted_values.dtype)
        return delta, 1.0 - delta

    def to_gaussian(self, x: Tensor) -> Tensor:
        """``xi(x) = Phi^{-1}(F~(x))``: ``x [B, T, N]`` (any T) -> ``[B, T, N]``."""
        query = rearrange(x, "b t n -> b n t").contiguous()
        below = torch.searchsorted(self.sorted_values, query, right=True)  # [B, N, T]
        cdf = below.to(x.dtype) / self.count.unsqueeze(-1).to(x.dtype)
        low, high = self._clip()
        cdf = torch.minimum(torch.maximum(cdf, low.unsqueeze(-1)), high.unsqueeze(-1))
        return rearrange(_NORMAL.icdf(cdf), "b n t -> b t n")

    def from_gaussian(self, z: Tensor) -> Tensor:
        """Inverse: ``z [B, S, Q, N]`` -> values, the quantile function of the module docstring."""
        b, s, q, n = z.shape
        u = rearrange(_NORMAL.cdf(z), "b s q n -> b n (s q)")
        m = self.count.unsqueeze(-1).to(z.dtype)  # [B, N, 1]
        position = (u * m - 1.0).clamp_min(0.0)  # order statistic x_(k) sits at k - 1
        position = torch.minimum(position, m - 1.0)
        lower = position.floor().long()
        upper = torch.minimum(lower + 1, (m - 1.0).long().expand_as(lower))
        frac = position - lower.to(z.dtype)
        x_low = torch.gather(self.sorted_values, -1, lower)
        x_high = torch.gather(self.sorted_values, -1, upper)
        values = x_low + frac * (x_high - x_low)
        return rearrange(values, "b n (s q) -> b s q n", s=s, q=q)
