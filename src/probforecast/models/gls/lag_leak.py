"""Replaying an official predictor's use of true horizon values in lagged inputs (opt-in).

The GLS paper's numbers were sampled by predictors that, at some horizon steps, feed a lagged
input the **true** target instead of the sample path's own value. probforecast's sampler always
feeds the path's values (a forecast cannot see its horizon); ``future_lag_leak`` replays a named
predictor's rule so that a paper's number can be reproduced and set beside the clean one. It is
an evaluation device, not a forecaster: it reads ``future_target``.

Rule per mode, for the horizon step ``h`` (0-based: the step that predicts ``y_{t0+h}``) and a
lag ``L > 1`` whose value lies in the horizon (``h >= L``): the lag-``L`` input of step ``h`` is
the true ``y_{t0+h-L}`` when

- ``none`` (default): never;
- ``at_lag``: ``h == L``, i.e. the true ``y_{t0}`` at step ``L``. pytorch-forecasting 0.10.2's
  ``DeepAR.decode`` writes the sampled value into the lag-``L`` input only ``if idx > lag``; the
  official w/o baselines (``train_baseline.py``: DeepAR and its ``ARTransformer``) and the GPVar
  GLS predictor (``BatchDeepARPredictor``) share that rule: the paper's GPVar w/o, Transformer
  w/o and GPVar w/ rows (m4_hourly: lag 24 at step 24; exchange_rate_nips: lags 7 and 14);
- ``horizon``: every ``h >= L``. The official Transformer GLS predictor (``BatchGPTPredictor``)
  writes the sampled lag values into window position 0 instead of the current one, so every
  decoder position keeps its true lag values: the paper's Transformer w/ rows.

Lag 1 (the official predictors' target column, always overwritten with the sample) is never
leaked. A horizon value that is not observed is never leaked (the path's value stays).
"""

from __future__ import annotations

from typing import Literal, get_args

from einops import repeat
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.models.gls.copula import EmpiricalCopula

LagLeak = Literal["none", "at_lag", "horizon"]


def check_lag_leak(mode: str) -> None:
    """Raise ``ValueError`` naming the modes unless ``mode`` is one of them."""
    if mode not in get_args(LagLeak):
        raise ValueError(f"future_lag_leak must be one of {list(get_args(LagLeak))}; got {mode!r}")


def check_leak_batch(mode: LagLeak, batch: ForecastBatch) -> None:
    """A leaking ``mode`` needs an observed horizon: raise ``ValueError`` when ``batch`` has none
    (a forecast of the unknown future)."""
    if mode != "none" and not bool(batch.future_observed.any()):
        raise ValueError(
            f"future_lag_leak={mode!r} replays an official predictor that reads true horizon "
            "values, but this batch has no observed horizon (a forecast of the unknown future): "
            "use future_lag_leak: none"
        )


def leak_source(
    mode: LagLeak, batch: ForecastBatch, copula: EmpiricalCopula | None
) -> tuple[Tensor, Tensor] | None:
    """The horizon truth ``[B, Q, N]`` in the model's space (through ``copula`` when the model
    works on copula scores) and its mask; ``None`` for ``none``."""
    if mode == "none":
        return None
    truth = batch.future_target
    return (truth if copula is None else copula.to_gaussian(truth)), batch.future_observed


def leaked_lags(mode: LagLeak, lags: list[int], step: int) -> list[tuple[int, int]]:
    """``(j, h - L)`` for each lag ``L = lags[j]`` whose input takes the true value at step ``h``:
    ``j`` the input column, ``h - L`` the horizon index of the true value."""
    if mode == "none":
        return []
    leaks = (lambda lag: step == lag) if mode == "at_lag" else (lambda lag: step >= lag)
    return [(j, step - lag) for j, lag in enumerate(lags) if lag > 1 and leaks(lag)]


def replay_lag_leak(
    inputs: Tensor, truth: Tensor, observed: Tensor, leaks: list[tuple[int, int]]
) -> Tensor:
    """Put the true values into the leaked lag columns of one step's inputs.

    ``inputs [S*B, 1, N, F]`` (paths ordered ``(s b)``, lagged values in the first columns),
    ``truth, observed [B, Q, N]`` the horizon in the model's space and its mask; ``leaks`` from
    :func:`leaked_lags`. Returns a new tensor; unobserved truths keep the path's value.
    """
    if not leaks:
        return inputs
    out = inputs.clone()
    samples = inputs.shape[0] // truth.shape[0]
    for column, index in leaks:
        true = repeat(truth[:, index], "b n -> (s b) n", s=samples)
        seen = repeat(observed[:, index], "b n -> (s b) n", s=samples)
        out[:, 0, :, column] = true.where(seen, inputs[:, 0, :, column])
    return out
