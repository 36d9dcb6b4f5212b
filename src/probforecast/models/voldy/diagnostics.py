"""Scale smoothness (VolDy-VAE Eq. 33): lag-1 autocorrelation of the predicted scale path."""

from __future__ import annotations

import torch
from torch import Tensor


def lag1_autocorrelation(sigma: Tensor, eps: float = 1e-12) -> Tensor:
    r"""``sigma [B, T, C]`` -> ``[B, C]`` Pearson correlation of ``sigma[:, 1:]`` with
    ``sigma[:, :-1]`` per window and channel,

    .. math::
        \rho_{b,c} = \mathrm{Corr}(\hat\sigma_{b,2:T,c}, \hat\sigma_{b,1:T-1,c}),

    each lagged segment centred on its own mean. NaN where either segment is constant (the
    correlation is undefined; spec pitfall P14) or ``T < 3``.
    """
    if sigma.dim() != 3:
        raise ValueError(f"lag1_autocorrelation expects [B, T, C]; got shape {tuple(sigma.shape)}")
    if sigma.shape[1] < 3:
        return torch.full(
            (sigma.shape[0], sigma.shape[2]), float("nan"), dtype=sigma.dtype, device=sigma.device
        )
    a, b = sigma[:, 1:], sigma[:, :-1]
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    va, vb = a.square().sum(1), b.square().sum(1)
    scale = (va * vb).sqrt()
    corr = (a * b).sum(1) / scale.clamp_min(eps)
    undefined = (va <= eps * a.shape[1]) | (vb <= eps * b.shape[1])
    return torch.where(undefined, torch.full_like(corr, float("nan")), corr)


def scale_smoothness(sigma: Tensor) -> Tensor:
    """``rho_sigma``: mean of ``lag1_autocorrelation(sigma)`` over the windows and channels
    where it is defined (NaN if nowhere). Higher = temporally more coherent scales."""
    return torch.nanmean(lag1_autocorrelation(sigma))
