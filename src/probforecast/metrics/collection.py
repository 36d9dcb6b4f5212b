"""The metric registry and the factory of the standard metric collection of a run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torchmetrics import Metric, MetricCollection

from ._ratio import Aggregation, check_aggregation
from .calibration import QICE, Coverage, IntervalWidth, QuantileCoverageError
from .correlation import ProbCorr
from .crps import CRPS, CRPSQuantile, CRPSSum, CRPSSumQuantile
from .functional.crps import DEFAULT_CRPS_QUANTILES
from .multivariate import EnergyScore, VariogramScore
from .point import MAE, MSE, NMAE, NRMSE
from .sample_error import ProbMAE, ProbMSE

MetricBuilder = Callable[..., Metric]


def _quantile_crps(cls: type[CRPSQuantile]) -> MetricBuilder:
    def build(
        *,
        quantile_levels: Sequence[float] | None = None,
        aggregation: Aggregation = "pooled",
        quantile_method: str = "linear",
        **_: object,
    ) -> Metric:
        return cls(
            quantiles=DEFAULT_CRPS_QUANTILES if quantile_levels is None else quantile_levels,
            aggregation=aggregation,
            quantile_method=quantile_method,
        )

    build.__name__ = f"build_{cls.__name__}"
    return build


def _coverage(*, interval_level: float = 0.9, **_: object) -> Metric:
    return Coverage(level=interval_level)


def _interval_width(*, interval_level: float = 0.9, **_: object) -> Metric:
    return IntervalWidth(level=interval_level)


def _normalized_interval_width(*, interval_level: float = 0.9, **_: object) -> Metric:
    return IntervalWidth(level=interval_level, normalize=True)


def _plain(cls: type[Metric], **fixed: object) -> MetricBuilder:
    def build(**_: object) -> Metric:
        return cls(**fixed)

    build.__name__ = f"build_{cls.__name__}"
    return build


def _windowed(cls: type[Metric], **fixed: object) -> MetricBuilder:
    """Builder of a ratio metric that takes the collection's ``aggregation``."""

    def build(*, aggregation: str = "pooled", **_: object) -> Metric:
        return cls(aggregation=aggregation, **fixed)

    build.__name__ = f"build_{cls.__name__}"
    return build


#: Name -> builder ``(*, quantile_levels=None, interval_level=0.9) -> Metric``.
METRIC_REGISTRY: dict[str, MetricBuilder] = {
    "crps": _windowed(CRPS, normalize=True),
    "crps_unnormalized": _windowed(CRPS, normalize=False),
    "crps_quantile": _quantile_crps(CRPSQuantile),
    "crps_sum": _windowed(CRPSSum),
    "crps_sum_quantile": _quantile_crps(CRPSSumQuantile),
    "energy_score": _plain(EnergyScore),
    "qice": _plain(QICE),
    "quantile_coverage_error": _plain(QuantileCoverageError),
    "coverage": _coverage,
    "interval_width": _interval_width,
    "normalized_interval_width": _normalized_interval_width,
    "nmae": _windowed(NMAE),
    "nrmse": _windowed(NRMSE),
    "mse": _windowed(MSE),
    "mae": _windowed(MAE),
    "variogram_score": _plain(VariogramScore),
    "prob_corr": _plain(ProbCorr),
    "prob_mse": _plain(ProbMSE),
    "prob_mae": _plain(ProbMAE),
}

#: Ratio metrics whose value depends on ``aggregation`` (pooled sums or mean of window ratios).
#: The others average per entry (coverage, QICE, widths, MSE, MAE), per window (energy and
#: variogram scores) or per series (ProbCorr); for fully observed windows of one size their
#: pooled value is already the mean over windows. ``nrmse`` (a square root of a mean) has
#: no window-mean form here and is refused with ``window_mean``.
WINDOW_RATIO_METRICS: tuple[str, ...] = (
    "crps",
    "crps_unnormalized",
    "crps_quantile",
    "crps_sum",
    "nmae",
)
_NO_WINDOW_MEAN = ("nrmse",)

#: Names whose key carries the interval level, e.g. ``coverage`` -> ``coverage_90``.
_LEVELLED = ("coverage", "interval_width", "normalized_interval_width")

#: Built when ``metrics=None``: everything except ``normalized_interval_width``, which needs
#: ``series_scale=[B, N]`` in every update and is therefore opt-in, the paper-definition
#: ``prob_mse`` / ``prob_mae`` of CW-Gen (opt-in; ``mse`` / ``mae`` are its code's variant) and
#: ``crps_sum_quantile`` (GluonTS tables' CRPS-sum; opt-in beside the exact ``crps_sum``).
DEFAULT_METRICS: tuple[str, ...] = tuple(
    k
    for k in METRIC_REGISTRY
    if k not in ("normalized_interval_width", "prob_mse", "prob_mae", "crps_sum_quantile")
)

# Metrics with identical states and updates: torchmetrics updates one per group.
_SHARED_STATE_GROUPS = (
    ("crps", "crps_unnormalized"),
    ("mse", "mae", "nrmse"),
    ("prob_mse", "prob_mae"),
)


def _level_suffix(level: float) -> str:
    return f"{level * 100:g}".replace(".", "_")


def metric_key(name: str, interval_level: float = 0.9) -> str:
    """Key of registry ``name`` in the collection (``coverage`` -> ``coverage_90``)."""
    return f"{name}_{_level_suffix(interval_level)}" if name in _LEVELLED else name


def build_metric_collection(
    prefix: str = "",
    *,
    metrics: Sequence[str] | None = None,
    quantile_levels: Sequence[float] | None = None,
    interval_level: float = 0.9,
    aggregation: Aggregation = "pooled",
    quantile_method: str = "linear",
) -> MetricCollection:
    """Build the standard metric collection of a run.

    Args:
        prefix: prepended to every key, e.g. ``"val/"`` or ``"test/"``.
        metrics: registry names to build (see ``METRIC_REGISTRY``); default ``DEFAULT_METRICS``.
        quantile_levels: levels of ``crps_quantile``; default the 19 levels 0.05, ..., 0.95
            (pass ``[0.1, ..., 0.9]`` for ProbTS's default).
        interval_level: central interval of ``coverage`` / ``interval_width`` (keys
            ``coverage_90``, ``interval_width_90`` for 0.9).
        aggregation: how the ratio metrics (``WINDOW_RATIO_METRICS``) combine windows:
            ``pooled`` (sum of numerators over sum of denominators) or ``window_mean`` (mean of
            per-window ratios, ProbTS' evaluator and the GLS paper).
        quantile_method: sample quantiles of ``crps_quantile`` / ``crps_sum_quantile``:
            ``linear`` (``np.quantile``, ProbTS) or ``rank`` (GluonTS' order statistic at
            ``round((S - 1) q)``).

    Returns:
        A ``MetricCollection``; call ``update(samples, target, mask=..., past_target=...,
        series_scale=...)``: each metric receives the keyword arguments it declares.

    Raises:
        ValueError: for an unknown or repeated name, listing the valid names.
    """
    names = list(DEFAULT_METRICS if metrics is None else metrics)
    unknown = [n for n in names if n not in METRIC_REGISTRY]
    if unknown or not names or len(set(names)) != len(names):
        problem = f"unknown metric(s) {unknown}" if unknown else f"empty or repeated names {names}"
        raise ValueError(f"{problem}; valid names: {sorted(METRIC_REGISTRY)}")
    check_aggregation(aggregation)
    built: dict[str, Metric | MetricCollection] = {
        metric_key(n, interval_level): METRIC_REGISTRY[n](
            quantile_levels=quantile_levels,
            interval_level=interval_level,
            aggregation=aggregation,
            quantile_method=quantile_method,
        )
        for n in names
    }
    groups = [
        [metric_key(n, interval_level) for n in g if n in names] for g in _SHARED_STATE_GROUPS
    ]
    return MetricCollection(
        built, prefix=prefix or None, compute_groups=[g for g in groups if len(g) > 1]
    )
