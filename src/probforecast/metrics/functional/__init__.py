"""Pure tensor functions for probabilistic forecasts, on the tensors' device.

Shapes everywhere: ``samples [B, S, Q, N]`` (windows, samples, horizon, series),
``target [B, Q, N]``, optional ``mask [B, Q, N]`` (bool, True = observed). Unobserved entries
are left out of every score, on the sample side too; NaN in unobserved targets is harmless.
"""

from ._sort import CPU_SORT_METHODS, sample_quantiles, set_cpu_sort_method
from ._threads import metric_threads, set_metric_cpu_threads
from .calibration import (
    DEFAULT_COVERAGE_LEVELS,
    central_interval,
    coverage,
    interval_width,
    qice,
    qice_bin_counts,
    quantile_coverage_counts,
    quantile_coverage_error,
)
from .correlation import prob_corr
from .crps import DEFAULT_CRPS_QUANTILES, crps, crps_quantile, crps_sum
from .energy import energy_score
from .point import mae, mse, nmae, nrmse
from .sample_error import prob_mae, prob_mse
from .variogram import variogram_score
from .window_mean import window_mean_scores

__all__ = [
    "CPU_SORT_METHODS",
    "DEFAULT_COVERAGE_LEVELS",
    "DEFAULT_CRPS_QUANTILES",
    "central_interval",
    "coverage",
    "crps",
    "crps_quantile",
    "crps_sum",
    "energy_score",
    "metric_threads",
    "interval_width",
    "mae",
    "mse",
    "nmae",
    "nrmse",
    "prob_corr",
    "prob_mae",
    "prob_mse",
    "qice",
    "qice_bin_counts",
    "quantile_coverage_counts",
    "quantile_coverage_error",
    "sample_quantiles",
    "set_cpu_sort_method",
    "set_metric_cpu_threads",
    "variogram_score",
    "window_mean_scores",
]
