"""Scores aggregated as the GLS paper and ProbTS do: a normalised score per window (forecast
instance), then the mean over windows.

Our torchmetrics classes divide pooled sums (``sum CRPS / sum |y|`` over every window), which
weights windows by their scale; the GLS paper (App. B.1: "compute the metrics for each forecast
instance, then average over all instances") and its code normalise inside each window first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import check_forecast
from .crps import crps, crps_sum, sum_over_series
from .energy import energy_score


def _ratio(numerator: Tensor, denominator: Tensor, what: str) -> Tensor:
    if bool((denominator == 0).any()):
        raise ValueError(
            f"{what}: a window has sum |y| = 0, so its normalised score is undefined; "
            "use the pooled metrics (probforecast.metrics) for such data"
        )
    return numerator / denominator


def window_mean_scores(
    samples: Tensor, target: Tensor, mask: Tensor | None = None
) -> dict[str, Tensor]:
    r"""Per-window scores of the GLS paper's tables, ``[B]`` each (average them over windows).

    For window ``w`` with observed entries ``o``:

    - ``crps``: :math:`\sum_{(t,i) \in o} \mathrm{CRPS}(\hat F_{t,i}, y_{t,i}) / \sum_{(t,i) \in o} |y_{t,i}|`
      (the code's ``crps_mean``: mean CRPS over mean ``|y|``);
    - ``crps_sum``: :math:`\sum_t \mathrm{CRPS}(\hat F_{\Sigma,t}, \sum_i y_{t,i}) / \sum_t |\sum_i y_{t,i}|`;
    - ``energy_score``: the energy score (``beta = 1``) with the Frobenius norm over the
      ``Q x N`` window and the unbiased pairwise term over ``s < s'``, as the GLS code; not
      normalised.

    CRPS uses the V-statistic of the empirical CDF (pyro's ``crps_empirical``, the GLS code).

    Args:
        samples: ``[B, S, Q, N]``; target: ``[B, Q, N]``; mask: optional bool ``[B, Q, N]``.

    Returns:
        ``{"crps", "crps_sum", "energy_score"}`` -> ``[B]``.
    """
    mask = check_forecast(samples, target, mask)
    observed = torch.ones_like(target, dtype=torch.bool) if mask is None else mask
    abs_y = torch.where(observed, target.abs(), torch.zeros_like(target))
    _, target_sum, _ = sum_over_series(samples[:, :1], target, mask)
    return {
        "crps": _ratio(crps(samples, target, mask=mask).sum((-2, -1)), abs_y.sum((-2, -1)), "crps"),
        "crps_sum": _ratio(
            crps_sum(samples, target, mask=mask).sum(-1),
            target_sum.abs().sum((-2, -1)),
            "crps_sum",
        ),
        "energy_score": energy_score(samples, target, fair=True, mask=mask),
    }
