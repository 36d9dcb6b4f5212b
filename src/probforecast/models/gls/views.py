"""Dashboard views of a GLS forecaster's temporal correlation (``ModelViews`` callback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from probforecast.data.batch import ForecastBatch

if TYPE_CHECKING:
    from probforecast.models.gls.lowrank_ar import LowRankARForecaster


@torch.no_grad()
def correlation_views(model: LowRankARForecaster, batch: ForecastBatch) -> dict[str, object]:
    """Views of the first window of ``batch``: the learned ``C_t [D, D]`` at the first and last
    horizon step and, for ``correlation: kernel``, the mixture weights ``[Q, M]`` over the
    horizon, from the teacher-forced states (as in ``loss``). Empty for
    ``likelihood: independent``."""
    if model.correlation is None:
        return {}
    from probforecast.viz.model_views import gls_views

    seq = torch.cat([batch.past_target, batch.future_target], dim=1)
    copula = model._copula(batch)
    seq = (seq if copula is None else copula.to_gaussian(seq))[:1]
    observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)[:1]
    time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1)[:1]
    hidden, _ = model._hidden(
        model._inputs(seq, observed, time_feat, batch.series_ids[:1], model.max_lag)
    )
    hidden = hidden[0, -model.prediction_length :]  # [Q, N, H]
    corr = model.correlation.matrix(hidden)  # [Q, D, D]
    weights = (
        model.correlation.mixture_weights(hidden) if model.correlation.kind == "kernel" else None
    )
    scales = model.correlation.lengthscales.tolist() if weights is not None else []
    return gls_views(corr.float().cpu().numpy(), weights, scales)
