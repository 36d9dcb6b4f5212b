"""Point-forecast errors of a sample forecast: NMAE (median), NRMSE, MSE and MAE (mean).

Axes: ``B`` windows, ``S`` samples, ``Q`` horizon, ``N`` series. The functions' ratios
are ratios of sums over every observed entry; ``window_point_sums`` gives the per-window sums
from which the metric classes also form means of per-window ratios.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._sort import sample_quantiles
from ._validation import check_forecast, observed_target
from ._window_sums import window_count, window_sum


class PointErrorSums(NamedTuple):
    """Sums over observed entries (float64 scalars)."""

    squared_error: Tensor
    absolute_error: Tensor
    absolute_target: Tensor
    num_observed: Tensor


def window_point_sums(point: Tensor, target: Tensor, mask: Tensor | None) -> PointErrorSums:
    """Error sums of ``point [B, Q, N]`` over the observed entries of each window: ``[B]`` each."""
    err = point - target
    y = observed_target(target, mask)
    if mask is not None:
        err = torch.where(mask, err, torch.zeros((), dtype=err.dtype, device=err.device))
    return PointErrorSums(
        window_sum(err.square()),
        window_sum(err.abs()),
        window_sum(y.abs()),
        window_count(target, mask),
    )


def _sums(point: Tensor, target: Tensor, mask: Tensor | None) -> PointErrorSums:
    return PointErrorSums(*(v.sum() for v in window_point_sums(point, target, mask)))


def median_forecast(samples: Tensor) -> Tensor:
    """``[B, S, Q, N] -> [B, Q, N]`` sample median (linear interpolation, as ``np.quantile``)."""
    return sample_quantiles(samples, (0.5,))[0]


def mean_point_sums(
    samples: Tensor, target: Tensor, *, mask: Tensor | None = None
) -> PointErrorSums:
    """Error sums of the sample mean :math:`\\bar x = \\frac1S\\sum_s x_s`."""
    mask = check_forecast(samples, target, mask)
    return _sums(samples.mean(1), target, mask)


def median_point_sums(
    samples: Tensor, target: Tensor, *, mask: Tensor | None = None
) -> PointErrorSums:
    """Error sums of the sample median (linear interpolation, as ``np.quantile(x, 0.5)``)."""
    mask = check_forecast(samples, target, mask)
    return _sums(median_forecast(samples), target, mask)


def nmae(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    r"""Normalised MAE of the sample median (ND): :math:`\sum|\tilde x - y| / \sum|y|`."""
    sums = median_point_sums(samples, target, mask=mask)
    return sums.absolute_error / sums.absolute_target


def nrmse(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    r"""Normalised RMSE of the sample mean (ProbTS): :math:`\sqrt{\overline{(\bar x - y)^2}} / \overline{|y|}`."""
    sums = mean_point_sums(samples, target, mask=mask)
    return (sums.squared_error / sums.num_observed).sqrt() / (
        sums.absolute_target / sums.num_observed
    )


def mse(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    r"""MSE of the sample mean (CW-Gen's "ProbMSE" as coded): :math:`\overline{(\bar x - y)^2}`."""
    sums = mean_point_sums(samples, target, mask=mask)
    return sums.squared_error / sums.num_observed


def mae(samples: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    r"""MAE of the sample mean (CW-Gen's "ProbMAE" as coded): :math:`\overline{|\bar x - y|}`."""
    sums = mean_point_sums(samples, target, mask=mask)
    return sums.absolute_error / sums.num_observed
