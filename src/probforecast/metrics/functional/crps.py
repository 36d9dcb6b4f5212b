"""Sample-based CRPS: the exact score of the empirical distribution and its quantile approximation.

Axes: ``B`` windows, ``S`` samples, ``Q`` horizon, ``N`` series.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._sort import quantiles_of_sorted, sorted_map
from ._validation import check_forecast, check_levels

# Elements of the masked temporary when summing over series.
_SUM_BLOCK_ELEMENTS = 1 << 22

#: The 19 levels 0.05, 0.10, ..., 0.95 (GluonTS ``MultivariateEvaluator`` and VolDy-VAE's
#: ProbTS config with ``quantiles_num: 20``). ProbTS's own default is 0.1, ..., 0.9.
DEFAULT_CRPS_QUANTILES: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _crps_block(block: Tensor, y: Tensor, fair: bool) -> tuple[Tensor]:
    """CRPS of one sorted block ``[S, b, m]`` against ``y [b, m]``."""
    s = block.shape[0]
    # sum_{s,s'} |x_s - x_s'| = 2 sum_i (2i - S - 1) x_(i)  (i = 1..S, sorted ascending)
    weights = torch.arange(1 - s, s, 2, dtype=block.dtype, device=block.device)
    spread = torch.tensordot(weights, block, dims=1)  # = 1/2 sum_{s,s'} |x_s - x_s'|
    abs_err = (block - y).abs_().sum(0)
    denominator = s * (s - 1) if fair else s * s
    return (abs_err / s - spread / denominator,)


def crps(
    samples: Tensor, target: Tensor, *, fair: bool = False, mask: Tensor | None = None
) -> Tensor:
    r"""Exact CRPS of the empirical sample distribution, per point.

    .. math::
        \mathrm{CRPS}(\hat F, y) = \frac1S\sum_s |x_s - y| - \frac{1}{2S^2}\sum_{s,s'}|x_s - x_{s'}|

    (the V-statistic, i.e. the integral :math:`\int(\hat F(z) - 1\{y \le z\})^2 dz` of the
    empirical CDF; pyro's ``crps_empirical``, scoringrules' ``"nrg"``/``"qd"``, properscoring).
    ``fair=True`` divides the spread term by :math:`S(S-1)` instead (the unbiased U-statistic,
    scoringrules' ``"fair"``). The spread term uses the sorted-sample identity
    :math:`\sum_{s,s'}|x_s - x_{s'}| = 2\sum_{i=1}^S (2i - S - 1)\,x_{(i)}`, so the cost is
    one sort per point (O(S log S)) and no ``S x S`` tensor is built.

    Args:
        samples: ``[B, S, Q, N]`` forecast samples.
        target: ``[B, Q, N]`` observations.
        fair: use the unbiased (fair) estimator; needs ``S >= 2``.
        mask: optional ``[B, Q, N]`` bool, True = observed; unobserved points score 0.

    Returns:
        ``[B, Q, N]`` CRPS per point, in the units of the target.
    """
    mask = check_forecast(samples, target, mask)
    s = samples.shape[1]
    if fair and s < 2:
        raise ValueError(f"the fair CRPS needs at least 2 samples, got S = {s}")
    return _per_point(samples, target, mask, lambda blk, y: _crps_block(blk, y, fair))


def _per_point(samples: Tensor, target: Tensor, mask: Tensor | None, block_score) -> Tensor:
    """``[B, Q, N]``: ``block_score(sorted block [S, b, m], y [b, m]) -> (score [b, m],)``
    applied over the sorted sample axis of every point (``sorted_map``); masked points 0."""
    b, s, q, n = samples.shape
    (out,) = sorted_map(samples.reshape(b, s, q * n), block_score, target.reshape(b, q * n))
    out = out.view(b, q, n)
    if mask is not None:
        out = torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out


def _pinball_block(
    block: Tensor, y: Tensor, levels: tuple[float, ...], method: str
) -> tuple[Tensor]:
    """Mean over levels of ``2 * pinball`` for one sorted block ``[S, b, m]``."""
    quant = quantiles_of_sorted(block, levels, method)  # [L, b, m]
    level = torch.tensor(levels, dtype=block.dtype, device=block.device).view(-1, 1, 1)
    err = y - quant  # pinball_q(e) = max(q e, (q - 1) e), e = y - F^-1(q)
    loss = torch.maximum(level * err, (level - 1) * err)
    return (2.0 * loss.mean(0),)


def crps_quantile(
    samples: Tensor,
    target: Tensor,
    quantiles: Sequence[float] = DEFAULT_CRPS_QUANTILES,
    *,
    mask: Tensor | None = None,
    quantile_method: str = "linear",
) -> Tensor:
    r"""Quantile-loss approximation of the CRPS (GluonTS / ProbTS "CRPS"), per point.

    .. math::
        \mathrm{CRPS}_{QL}(y) = \frac1L\sum_{l=1}^L 2\,\rho_{q_l}\big(y - \hat F^{-1}(q_l)\big),
        \qquad \rho_q(e) = \max(q e, (q-1) e),

    with :math:`\hat F^{-1}(q)` the sample quantile: linear interpolation (as ``np.quantile``,
    ProbTS) or, with ``quantile_method="rank"``, the order statistic at ``round((S - 1) q)``
    (GluonTS' ``SampleForecast.quantile``). ProbTS writes the same loss as
    :math:`2|(\hat F^{-1}(q) - y)(1\{y \le \hat F^{-1}(q)\} - q)|`. Its reported "CRPS" is the
    sum of this over points divided by :math:`\sum|y|` (see :class:`~probforecast.metrics.CRPSQuantile`).

    Args:
        samples: ``[B, S, Q, N]``.
        target: ``[B, Q, N]``.
        quantiles: levels in (0, 1); default the 19 levels 0.05, ..., 0.95.
        mask: optional ``[B, Q, N]`` bool; unobserved points score 0.

    Returns:
        ``[B, Q, N]``.
    """
    mask = check_forecast(samples, target, mask)
    levels = check_levels(quantiles, "quantiles")
    return _per_point(
        samples, target, mask, lambda blk, y: _pinball_block(blk, y, levels, quantile_method)
    )


def sum_over_series(
    samples: Tensor, target: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Aggregate over series: ``[B, S, Q, 1]``, ``[B, Q, 1]`` and the mask ``[B, Q, 1]``.

    Unobserved entries contribute 0 to both sums; a time step is observed if any series is.
    With a mask the samples are summed in blocks of windows (temporaries of at most
    ``2**22`` elements) rather than masked all at once.
    """
    if mask is None:
        return samples.sum(-1, keepdim=True), target.sum(-1, keepdim=True), None
    zero = torch.zeros((), dtype=samples.dtype, device=samples.device)
    b, s, q, n = samples.shape
    step = max(1, _SUM_BLOCK_ELEMENTS // (s * q * n))
    if b == 0:
        return (
            samples.sum(-1, keepdim=True),
            target.sum(-1, keepdim=True),
            mask.any(-1, keepdim=True),
        )
    sample_sum = torch.cat(
        [
            torch.where(mask[b0 : b0 + step, None], samples[b0 : b0 + step], zero).sum(
                -1, keepdim=True
            )
            for b0 in range(0, b, step)
        ]
    )
    target_sum = torch.where(mask, target, zero).sum(-1, keepdim=True)
    return sample_sum, target_sum, mask.any(-1, keepdim=True)


def crps_sum(
    samples: Tensor, target: Tensor, *, fair: bool = False, mask: Tensor | None = None
) -> Tensor:
    r"""CRPS of the sum over series, per window and step: ``[B, Q]``.

    :math:`\mathrm{CRPS}(\hat F_{\Sigma,t}, \sum_i y_{i,t})` where :math:`\hat F_{\Sigma,t}` is the
    empirical distribution of :math:`\sum_i x_{s,i,t}` (Salinas et al. 2019; GLS Eq. 28).
    Masked entries contribute 0 to both sums; steps with no observed series score 0.
    """
    mask = check_forecast(samples, target, mask)
    sample_sum, target_sum, step_mask = sum_over_series(samples, target, mask)
    return crps(sample_sum, target_sum, fair=fair, mask=step_mask).squeeze(-1)
