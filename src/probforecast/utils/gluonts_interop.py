"""Forecasts as GluonTS objects, so that GluonTS' evaluators and plots read our samples.

``Forecast.samples [W, S, Q, N]`` becomes

- ``multivariate=True``: ``W`` ``SampleForecast`` s with ``samples [S, Q, N]`` (what
  ``gluonts.evaluation.MultivariateEvaluator`` reads), and ``W`` target frames ``[P + Q, N]``
  with columns ``0..N-1`` (the evaluator selects dimensions by those labels);
- ``multivariate=False``: ``W * N`` ``SampleForecast`` s with ``samples [S, Q]``, window-major
  (window 0's N series, then window 1's, ...), for ``gluonts.evaluation.Evaluator``, and the
  matching ``W * N`` one-column target frames.

Target frames hold the window's observed history followed by its horizon truth on a
``PeriodIndex`` (unobserved values are NaN, which GluonTS' evaluators skip); each forecast's
``start_date`` is the horizon's first period and its ``item_id`` is ``"<series>@<start>"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from gluonts.model.forecast import SampleForecast

    from probforecast.api import Forecast


def to_gluonts_forecasts(forecast: Forecast, multivariate: bool = True) -> list[SampleForecast]:
    """GluonTS ``SampleForecast`` s of every window (and series, when not ``multivariate``)."""
    from gluonts.model.forecast import SampleForecast

    out = []
    for w, horizon in enumerate(forecast.index):
        start = horizon[0]
        if multivariate:
            out.append(
                SampleForecast(
                    samples=np.asarray(forecast.samples[w]),
                    start_date=start,
                    item_id=f"all@{start}",
                )
            )
            continue
        for n, name in enumerate(forecast.series_names):
            out.append(
                SampleForecast(
                    samples=np.asarray(forecast.samples[w, :, :, n]),
                    start_date=start,
                    item_id=f"{name}@{start}",
                )
            )
    return out


def to_gluonts_targets(forecast: Forecast, multivariate: bool = True) -> list[pd.DataFrame]:
    """History + truth of every window (and series) as GluonTS' evaluators read targets."""
    out = []
    for w, horizon in enumerate(forecast.index):
        index = forecast.history_index(w).append(horizon)
        values = np.concatenate([forecast.history[w], forecast.truth[w]])  # [P + Q, N]
        if multivariate:
            out.append(pd.DataFrame(values, index=index))  # MultivariateEvaluator reads dims 0..N-1
            continue
        out.extend(
            pd.DataFrame(values[:, [n]], index=index, columns=[name])
            for n, name in enumerate(forecast.series_names)
        )
    return out
