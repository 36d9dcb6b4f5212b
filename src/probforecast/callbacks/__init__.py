from probforecast.callbacks.checkpoint import (
    BEST_CRPS_CHECKPOINT,
    ForecastCheckpoint,
    resolve_best,
)
from probforecast.callbacks.forecast_plot import ForecastPlot
from probforecast.callbacks.model_views import ModelViews
from probforecast.callbacks.prediction_writer import SamplesWriter
from probforecast.callbacks.progress import ThroughputProgressBar
from probforecast.callbacks.series_metrics import SeriesMetricsTable
from probforecast.callbacks.system_metrics import SystemMetrics

__all__ = [
    "BEST_CRPS_CHECKPOINT",
    "ForecastCheckpoint",
    "ForecastPlot",
    "ModelViews",
    "SamplesWriter",
    "SeriesMetricsTable",
    "SystemMetrics",
    "ThroughputProgressBar",
    "resolve_best",
]
