"""The benchmark harness: fit, reload the best checkpoint, backtest, summarise over seeds.

Every ``scripts/bench_*.py`` and ``scripts/reproduce_*.py`` is built from these parts;
``python -m probforecast.evaluate`` runs them on any config (see ``docs/api/evaluate.md``).

- :func:`fit_run` / :func:`reload_run` (``fitting``): one LightningCLI run and its best
  checkpoint rebuilt by ``ForecastModule.load``;
- :func:`backtest` (``backtest``): test scores over sampling passes, with the module's metrics
  (:func:`module_metrics`) or a paper's own aggregation (:func:`window_mean_scorer`);
- :func:`mean_std`, :func:`in_band`, :func:`group_records` (``summary``): mean ± std over
  seeds and the band check against published values;
- :class:`JsonLines` (``records``): one JSON record per run, so benchmarks resume.
"""

from probforecast.evaluate.backtest import (
    FIRST_SAMPLE_SEED,
    Scorer,
    backtest,
    module_metrics,
    window_mean_scorer,
)
from probforecast.evaluate.fitting import QUIET_RUN_ARGS, FittedRun, build_cli, fit_run, reload_run
from probforecast.evaluate.records import JsonLines
from probforecast.evaluate.summary import format_mean_std, group_records, in_band, mean_std

__all__ = [
    "FIRST_SAMPLE_SEED",
    "QUIET_RUN_ARGS",
    "FittedRun",
    "JsonLines",
    "Scorer",
    "backtest",
    "build_cli",
    "fit_run",
    "format_mean_std",
    "group_records",
    "in_band",
    "mean_std",
    "module_metrics",
    "reload_run",
    "window_mean_scorer",
]
