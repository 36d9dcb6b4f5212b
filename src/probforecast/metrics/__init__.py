"""Probabilistic forecast metrics as torchmetrics classes (summed states, any device, DDP-safe).

Every metric updates on ``samples [B, S, Q, N]``, ``target [B, Q, N]`` and an optional
``mask [B, Q, N]`` (True = observed); ``compute()`` returns a scalar. Pure functions live in
:mod:`probforecast.metrics.functional`. See the README's "Metrics" section for the formulas and for which
paper reports which variant.
"""

from . import functional
from ._base import ForecastMetric
from .calibration import QICE, Coverage, IntervalWidth, QuantileCoverageError
from .collection import DEFAULT_METRICS, METRIC_REGISTRY, build_metric_collection, metric_key
from .correlation import ProbCorr
from .crps import CRPS, CRPSQuantile, CRPSSum, CRPSSumQuantile
from .multivariate import EnergyScore, VariogramScore
from .point import MAE, MSE, NMAE, NRMSE
from .sample_error import ProbMAE, ProbMSE
from .series import SeriesMetrics

__all__ = [
    "CRPS",
    "DEFAULT_METRICS",
    "MAE",
    "METRIC_REGISTRY",
    "MSE",
    "NMAE",
    "NRMSE",
    "QICE",
    "CRPSQuantile",
    "CRPSSum",
    "CRPSSumQuantile",
    "Coverage",
    "EnergyScore",
    "ForecastMetric",
    "IntervalWidth",
    "ProbCorr",
    "ProbMAE",
    "ProbMSE",
    "QuantileCoverageError",
    "SeriesMetrics",
    "VariogramScore",
    "build_metric_collection",
    "functional",
    "metric_key",
]
