"""CRPS metrics: exact sample CRPS, the quantile-loss CRPS of GluonTS/ProbTS, and CRPS-sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from ._ratio import Aggregation, WindowRatioMetric
from .functional import crps as crps_fn
from .functional import crps_quantile as crps_quantile_fn
from .functional._sort import QUANTILE_METHODS
from .functional._validation import check_forecast, check_levels, observed_target
from .functional._window_sums import window_count, window_observed, window_sum
from .functional.crps import DEFAULT_CRPS_QUANTILES, sum_over_series


class CRPS(WindowRatioMetric):
    r"""Exact CRPS of the empirical sample distribution over observed entries.

    ``normalize=True`` (default): :math:`\sum_{t,i}\mathrm{CRPS}_{bti} / \sum_{t,i}|y_{bti}|`
    per window ``b`` (scale-free; the GLS paper's ``crps_mean``); ``normalize=False``: the mean
    CRPS per entry (CW-Gen, in standardised space). ``aggregation`` pools the sums over windows
    (default) or averages the per-window ratios (``window_mean``, GLS paper and ProbTS).
    ``fair=True`` uses the unbiased estimator (see :func:`~probforecast.metrics.functional.crps`).
    """

    def __init__(
        self,
        normalize: bool = True,
        fair: bool = False,
        aggregation: Aggregation = "pooled",
        **kwargs: Any,
    ) -> None:
        super().__init__(aggregation, _DENOMINATORS, _use(normalize), **kwargs)
        self.normalize = bool(normalize)
        self.fair = bool(fair)

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        values = crps_fn(samples, target, fair=self.fair, mask=mask)
        self._accumulate(
            window_sum(values), _denominators(target, mask), window_observed(target, mask)
        )


class CRPSQuantile(WindowRatioMetric):
    r"""Quantile-loss CRPS as reported by GluonTS and ProbTS ("mean_wQuantileLoss").

    .. math::
        \frac{1}{L}\sum_l \frac{\sum_{b,t,i} 2\rho_{q_l}(y - \hat F^{-1}(q_l))}{\sum_{b,t,i}|y|}

    with the sums over the entries of each window ``b``. Default levels: the 19 levels 0.05, ...,
    0.95 (GluonTS and VolDy-VAE's ``quantiles_num: 20``); ProbTS's own default is the 9 levels
    0.1, ..., 0.9. ``aggregation="pooled"`` (default) divides the sums over all windows (batch-size
    invariant); ``"window_mean"`` averages the per-window ratios as ProbTS' evaluator does
    (its batch-size-weighted mean of per-batch means of per-window ratios is this mean).
    ``normalize=False`` gives the mean per entry.
    """

    def __init__(
        self,
        quantiles: Sequence[float] = DEFAULT_CRPS_QUANTILES,
        normalize: bool = True,
        aggregation: Aggregation = "pooled",
        quantile_method: str = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(aggregation, _DENOMINATORS, _use(normalize), **kwargs)
        self.quantiles = check_levels(quantiles, "quantiles")
        self.normalize = bool(normalize)
        self.quantile_method = check_quantile_method(quantile_method)

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        loss = crps_quantile_fn(
            samples, target, self.quantiles, mask=mask, quantile_method=self.quantile_method
        )
        self._accumulate(
            window_sum(loss), _denominators(target, mask), window_observed(target, mask)
        )


class CRPSSumQuantile(CRPSQuantile):
    r"""Quantile-loss CRPS of the sum over series: GluonTS' ``m_sum_mean_wQuantileLoss``.

    .. math::
        \frac1L\sum_l \frac{\sum_{b,t} 2\rho_{q_l}\big(Y_{bt} - \hat F_{\Sigma,bt}^{-1}(q_l)\big)}
        {\sum_{b,t}|Y_{bt}|}, \qquad Y_{bt} = \sum_i y_{bti},

    with :math:`\hat F_{\Sigma,bt}^{-1}` the sample quantile of :math:`\sum_i x_{s,bti}`. The
    "CRPS-sum" of GluonTS-style tables (GPVar, TimeGrad, the GLS paper's baselines); reproduce
    such a table with ``quantiles=(0.1, ..., 0.9)`` and ``quantile_method="rank"``. Unobserved
    entries contribute 0 to both sums; steps with no observed series are skipped.
    """

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        sample_sum, target_sum, step_mask = sum_over_series(samples, target, mask)
        super().update(sample_sum, target_sum, step_mask)


def check_quantile_method(method: str) -> str:
    if method not in QUANTILE_METHODS:
        raise ValueError(f"quantile_method must be one of {QUANTILE_METHODS}; got {method!r}")
    return method


class CRPSSum(WindowRatioMetric):
    r"""CRPS of the sum over series (Salinas et al. 2019), normalised by :math:`\sum_t|\sum_i y|`.

    .. math::
        \frac{\sum_{b,t}\mathrm{CRPS}(\hat F_{\Sigma,bt}, \sum_i y_{bti})}{\sum_{b,t}|\sum_i y_{bti}|}

    with :math:`\hat F_{\Sigma,bt}` the empirical distribution of :math:`\sum_i x_{s,bti}`.
    Unobserved entries contribute 0 to both sums; steps with no observed series are skipped.
    ``normalize=False`` gives the mean CRPS-sum per step. ``aggregation="window_mean"`` averages
    the per-window ratios (sums over ``t`` inside each window ``b``) instead of pooling the sums.
    """

    def __init__(
        self,
        normalize: bool = True,
        fair: bool = False,
        aggregation: Aggregation = "pooled",
        **kwargs: Any,
    ) -> None:
        super().__init__(aggregation, _DENOMINATORS, _use(normalize), **kwargs)
        self.normalize = bool(normalize)
        self.fair = bool(fair)

    def update(self, samples: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate ``samples [B,S,Q,N]`` against ``target [B,Q,N]`` (``mask [B,Q,N]`` optional)."""
        mask = check_forecast(samples, target, mask)
        sample_sum, target_sum, step_mask = sum_over_series(samples, target, mask)
        values = crps_fn(sample_sum, target_sum, fair=self.fair, mask=step_mask)
        self._accumulate(
            window_sum(values),
            _denominators(target_sum, step_mask),
            window_observed(target_sum, step_mask),
        )


_DENOMINATORS = ("abs_target", "count")


def _use(normalize: bool) -> str:
    return "abs_target" if normalize else "count"


def _denominators(target: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
    """``[B]`` each: sum of ``|y|`` over each window's observed entries, and their number."""
    return {
        "abs_target": window_sum(observed_target(target, mask).abs()),
        "count": window_count(target, mask),
    }
