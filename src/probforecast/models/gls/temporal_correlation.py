"""The D x D temporal correlation matrix C_t of the GLS likelihood, from the network's state."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from probforecast.distributions import (
    ARCorrelation,
    ar_correlation,
    default_lengthscales,
    kernel_mixture_correlation,
)
from probforecast.models.gls.heads import ARCoefficientHead, MixtureWeightHead

CorrelationKind = Literal["kernel", "ar"]


def given_options(**options: object) -> list[str]:
    """The names of the options that are not ``None`` (set by the user), in order."""
    return [name for name, value in options.items() if value is not None]


class TemporalCorrelation(nn.Module):
    """``hidden [..., N, H] -> C [..., D, D]``: one correlation matrix shared by the N series.

    ``kernel`` (paper default): ``C = sum_{m<M} w_m exp(-(i-j)^2 / l_m^2) + w_M I`` with per-series
    softmax weights ``w = softmax(W h)`` averaged over the series (the official code's choice).
    ``ar``: the AR(p) Toeplitz autocorrelation of spec-gls §7.2 with ``phi = tanh(W h)`` averaged
    over the series.

    Args:
        hidden_size: ``H``. size: ``D``.
        kind: ``kernel`` or ``ar``.
        num_components: ``M`` (identity included) for ``kernel``; default 3.
        lengthscales: the ``M - 1`` SE lengthscales; default the first ``M - 1`` of
            ``{lengthscale_start, lengthscale_start + 1, ...}`` (paper: start 0.5 or 1.0;
            default 1.0).
        learn_lengthscales: make them parameters (softplus-positive, clamped at 8 as the code);
            default False.
        ar_order: ``p`` for ``ar``; default 1.

    The options of the other kind are errors, not silently ignored: ``ar`` with any of the four
    kernel options, ``kernel`` with ``ar_order``.
    """

    def __init__(
        self,
        hidden_size: int,
        size: int,
        kind: CorrelationKind = "kernel",
        num_components: int | None = None,
        lengthscales: list[float] | None = None,
        lengthscale_start: float | None = None,
        learn_lengthscales: bool | None = None,
        ar_order: int | None = None,
    ) -> None:
        super().__init__()
        self.size, self.kind = size, kind
        given = given_options(
            num_components=num_components,
            lengthscales=lengthscales,
            lengthscale_start=lengthscale_start,
            learn_lengthscales=learn_lengthscales,
        )
        if kind == "ar" and given:
            raise ValueError(
                f"correlation 'ar' does not use the kernel-mixture options {given}; "
                "remove them or use correlation: kernel"
            )
        if kind == "kernel" and ar_order is not None:
            raise ValueError(
                f"ar_order={ar_order} is an option of correlation 'ar'; remove it or use "
                "correlation: ar"
            )
        num_components = 3 if num_components is None else num_components
        lengthscale_start = 1.0 if lengthscale_start is None else lengthscale_start
        ar_order = 1 if ar_order is None else ar_order
        if kind == "kernel":
            if num_components < 2:
                raise ValueError(
                    f"num_components must be >= 2 (SE kernels + identity); got {num_components}"
                )
            scales = torch.tensor(
                lengthscales
                if lengthscales is not None
                else default_lengthscales(num_components, lengthscale_start),
                dtype=torch.float32,
            )
            if scales.numel() != num_components - 1:
                raise ValueError(
                    f"need {num_components - 1} lengthscales for {num_components} components; got {scales.tolist()}"
                )
            self.weight_head = MixtureWeightHead(hidden_size, num_components)
            raw = torch.log(torch.expm1(scales))  # softplus^{-1}
            if learn_lengthscales:
                self.raw_lengthscales = nn.Parameter(raw)
            else:
                self.register_buffer("raw_lengthscales", raw)
        elif kind == "ar":
            if ar_order not in (1, 2, 3):
                raise ValueError(f"ar_order must be 1, 2 or 3; got {ar_order}")
            self.ar_head = ARCoefficientHead(hidden_size, ar_order)
        else:
            raise ValueError(f"correlation kind must be 'kernel' or 'ar'; got {kind!r}")

    @property
    def lengthscales(self) -> Tensor:
        return F.softplus(self.raw_lengthscales).clamp(max=8.0)

    def mixture_weights(self, hidden: Tensor) -> Tensor:
        """``[..., N, H] -> [..., M]`` series-averaged mixture weights (kernel kind)."""
        return self.weight_head(hidden).mean(dim=-2)

    def forward(self, hidden: Tensor) -> Tensor | ARCorrelation:
        """What the likelihood and the sampler take: the dense ``C [..., D, D]`` for ``kernel``,
        an :class:`~probforecast.distributions.ARCorrelation` (batch ``[...]``) for ``ar``, whose
        closed-form banded precision makes them block-banded (``O(D p^2 R^3)``)."""
        if self.kind == "kernel":
            return kernel_mixture_correlation(
                self.mixture_weights(hidden), self.lengthscales, self.size
            )
        return ar_correlation(self.ar_head(hidden).mean(dim=-2), self.size)

    def matrix(self, hidden: Tensor) -> Tensor:
        """``C [..., D, D]`` as a dense matrix (``ar``: with the ``1e-6`` diagonal jitter of
        :func:`~probforecast.distributions.ar_toeplitz_correlation`), for views and diagnostics."""
        correlation = self(hidden)
        if isinstance(correlation, ARCorrelation):
            return correlation.dense(jitter=1e-6)
        return correlation
