r"""The paper's ProbMSE / ProbMAE (CW-Gen §11.5): per-sample errors averaged over the samples.

Axes: ``B`` windows, ``S`` samples, ``Q`` horizon, ``N`` series. Over the observed entries
``(b, t, i)`` (count ``C``):

.. math::
    \mathrm{ProbMSE} = \frac1C\sum_{b,t,i}\frac1S\sum_s (x^{(s)}_{bti} - y_{bti})^2, \qquad
    \mathrm{ProbMAE} = \frac1C\sum_{b,t,i}\frac1S\sum_s |x^{(s)}_{bti} - y_{bti}|

("stricter than the MSE of the mean": ProbMSE = MSE of the sample mean + the mean biased
sample variance). The official code computes the MSE/MAE of the sample mean instead: that is
``mse`` / ``mae`` in :mod:`.point`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._validation import check_forecast


class SampleErrorSums(NamedTuple):
    """Sums over observed entries of the sample-averaged errors (float64 scalars)."""

    squared_error: Tensor
    absolute_error: Tensor
    num_observed: Tensor


def sample_error_sums(
    samples: Tensor, target: Tensor, *, mask: Tensor | None = None
) -> SampleErrorSums:
    """``sum_{b,t,i} mean_s (x_s - y)^2``, ``sum mean_s |x_s - y|`` and the observed count."""
    mask = check_forecast(samples, target, mask)
    err = samples - target.unsqueeze(1)  # [B, S, Q, N]
    sq, ab = err.square().mean(1), err.abs().mean(1)  # [B, Q, N]
    if mask is None:
        count = torch.tensor(float(target.numel()), dtype=torch.float64, device=target.device)
    else:
        zero = torch.zeros((), dtype=sq.dtype, device=sq.device)
        sq, ab = torch.where(mask, sq, zero), torch.where(mask, ab, zero)
        count = mask.sum(dtype=torch.float64)
    return SampleErrorSums(sq.sum(dtype=torch.float64), ab.sum(dtype=torch.float64), count)


def prob_mse(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    """The paper's ProbMSE (module docstring); NaN-free targets needed only where observed."""
    sums = sample_error_sums(samples, target, mask=mask)
    return sums.squared_error / sums.num_observed


def prob_mae(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    """The paper's ProbMAE (module docstring)."""
    sums = sample_error_sums(samples, target, mask=mask)
    return sums.absolute_error / sums.num_observed
