"""Reversible instance normalisation (RevIN, Kim et al., ICLR 2022).

Axes: ``B`` windows, ``T`` time steps, ``C`` channels (series).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RevIN(nn.Module):
    r"""Per-window, per-channel normalisation with an exact inverse.

    ``normalize`` computes, for each window ``b`` and channel ``c`` over the time axis,

    .. math::
        m_{b,c} = \frac1T\sum_t x_{b,t,c}, \qquad
        s_{b,c} = \sqrt{\tfrac1T\sum_t (x_{b,t,c} - m_{b,c})^2 + \epsilon}, \qquad
        \tilde x = \gamma_c \frac{x - m}{s} + \beta_c

    (biased variance, as the reference implementation), stores ``m`` and ``s``, and
    ``denormalize`` applies the inverse :math:`x = (\tilde x - \beta)/(\gamma + \epsilon^2)\,s + m`
    to any ``[B, T', C]`` tensor (e.g. a forecast of another length). ``denormalize_scale`` maps a
    *scale* (standard deviation) of the normalised space back: :math:`\sigma\,s/|\gamma+\epsilon^2|`.

    With a ``mask [B, T, C]`` (True = observed) the statistics use the observed steps only; a
    channel without observed steps gets ``m = 0`` and ``s = sqrt(eps)``.

    Args:
        num_features: ``C``, the number of channels.
        affine: learn ``gamma`` (init 1) and ``beta`` (init 0) per channel.
        eps: added to the variance (and squared, to the divisor of the inverse affine map).
    """

    def __init__(self, num_features: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(
                f"RevIN: num_features must be a positive integer; got {num_features!r}"
            )
        if eps <= 0:
            raise ValueError(f"RevIN: eps must be > 0; got {eps}")
        self.num_features = num_features
        self.affine = affine
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        self.mean: Tensor | None = None
        self.stdev: Tensor | None = None

    def _check(self, x: Tensor, name: str) -> None:
        if x.dim() != 3 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"RevIN.{name} expects [B, T, C={self.num_features}]; got shape {tuple(x.shape)}"
            )

    def statistics(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x [B, T, C]`` -> ``(mean, stdev)``, each ``[B, 1, C]`` (see the class docstring)."""
        self._check(x, "statistics")
        if mask is None:
            mean = x.mean(dim=1, keepdim=True)
            var = x.var(dim=1, keepdim=True, unbiased=False)
        else:
            if mask.shape != x.shape:
                raise ValueError(
                    f"RevIN: mask must have the shape of x {tuple(x.shape)}; got {tuple(mask.shape)}"
                )
            w = mask.to(x.dtype)
            count = w.sum(dim=1, keepdim=True).clamp_min(1.0)
            mean = (x * w).sum(dim=1, keepdim=True) / count
            var = ((x - mean).square() * w).sum(dim=1, keepdim=True) / count
        return mean, torch.sqrt(var + self.eps)

    def normalize(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x [B, T, C]`` -> normalised ``[B, T, C]``; stores the statistics for the inverse."""
        mean, stdev = self.statistics(x, mask)
        self.mean, self.stdev = mean.detach(), stdev.detach()
        out = (x - self.mean) / self.stdev
        if self.affine:
            out = out * self.weight + self.bias
        return out

    def _stats(self) -> tuple[Tensor, Tensor]:
        if self.mean is None or self.stdev is None:
            raise RuntimeError("RevIN.denormalize called before normalize")
        return self.mean, self.stdev

    def denormalize(self, x: Tensor) -> Tensor:
        """Normalised ``x [B, T', C]`` -> original units (uses the last ``normalize`` stats)."""
        self._check(x, "denormalize")
        mean, stdev = self._stats()
        if x.shape[0] != mean.shape[0]:
            raise ValueError(
                f"RevIN.denormalize got {x.shape[0]} windows; the stored statistics have "
                f"{mean.shape[0]} (call normalize on the same batch first)"
            )
        if self.affine:
            x = (x - self.bias) / (self.weight + self.eps**2)
        return x * stdev + mean

    def denormalize_scale(self, sigma: Tensor) -> Tensor:
        """A standard deviation ``sigma [B, T', C]`` of the normalised space -> original units."""
        self._check(sigma, "denormalize_scale")
        _, stdev = self._stats()
        if self.affine:
            sigma = sigma / (self.weight + self.eps**2).abs()
        return sigma * stdev
