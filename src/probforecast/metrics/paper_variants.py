"""Which paper prints which metric, and the registry metric + options that compute it.

``PAPER_VARIANTS`` is the one record of it; ``variants_table()`` renders it (the docs' Metrics
page is generated from it) and the tests build every listed collection, so a renamed metric or
option breaks a test, not a reader's reproduction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaperVariant:
    """One metric as a paper prints it.

    Attributes:
        paper: the paper (and protocol) that prints it.
        printed: what the paper's table shows, and how it is computed there.
        metric: the ``METRIC_REGISTRY`` name that computes it, or ``None`` if not provided.
        options: ``build_metric_collection`` keyword arguments that reproduce it.
        scale: the paper prints ``value * scale``.
        note: what else to know (data space, a close variant, a known difference).
    """

    paper: str
    printed: str
    metric: str | None
    options: Mapping[str, object] = field(default_factory=dict)
    scale: float = 1.0
    note: str = ""


_WINDOW_MEAN = {"aggregation": "window_mean"}
_PROBTS = {"aggregation": "window_mean", "quantile_method": "linear"}

PAPER_VARIANTS: tuple[PaperVariant, ...] = (
    PaperVariant(
        "GLS (Zheng & Sun 2024)",
        "CRPS: exact V-statistic (pyro `crps_empirical`), normalised by mean|y| per instance, "
        "averaged over instances",
        "crps",
        _WINDOW_MEAN,
    ),
    PaperVariant(
        "GLS (Zheng & Sun 2024)",
        "CRPS-sum: CRPS of the series sum, normalised by mean_t|sum_i y| per instance",
        "crps_sum",
        _WINDOW_MEAN,
    ),
    PaperVariant(
        "GLS (Zheng & Sun 2024)",
        "energy score: Frobenius norm over the Q x N instance, beta = 1, U-statistic",
        "energy_score",
        note="the registry's `energy_score` is the V-statistic; `EnergyScore(fair=True)` and "
        "`functional.window_mean_scores` give the paper's U-statistic",
    ),
    PaperVariant(
        "GLS (Zheng & Sun 2024)",
        "rho-risk 0.5 / 0.9: pinball loss without the factor 2, divided by sum y (signed)",
        None,
        note="for y >= 0 it equals `CRPSQuantile(quantiles=(rho,))` / 2",
    ),
    PaperVariant(
        "GluonTS evaluators (GPVar, TimeGrad tables)",
        "CRPS-sum: `m_sum_mean_wQuantileLoss`, 9 levels, order-statistic quantiles",
        "crps_sum_quantile",
        {"quantile_levels": [q / 10 for q in range(1, 10)], "quantile_method": "rank"},
        note="equal to GluonTS' MultivariateEvaluator to 1e-12 (tests/metrics)",
    ),
    PaperVariant(
        "CW-Gen (Yang et al. 2026)",
        "CRPS: exact, unnormalised, in standardised space, mean over entries",
        "crps_unnormalized",
        note="on scaled data (the module's scaled-space metrics)",
    ),
    PaperVariant("CW-Gen (Yang et al. 2026)", "QICE (CARD, 10 bins) x 100", "qice", scale=100.0),
    PaperVariant(
        "CW-Gen (Yang et al. 2026)",
        "ProbCorr",
        "prob_corr",
        note="standardised per window (the official code standardises over all test windows)",
    ),
    PaperVariant(
        "CW-Gen (Yang et al. 2026)",
        "ProbMSE / ProbMAE as coded: MSE / MAE of the sample mean",
        "mse",
        note="`mae` likewise; `prob_mse` / `prob_mae` are the paper's written definition",
    ),
    PaperVariant(
        "CW-Gen (Yang et al. 2026)",
        "PICP 5-95 % (computed, not reported)",
        "coverage",
        {"interval_level": 0.9},
    ),
    PaperVariant(
        "VolDy-VAE (ProbTS protocol)",
        "CRPS: quantile loss over 19 levels 0.05 ... 0.95, normalised by sum|y|, mean over windows",
        "crps_quantile",
        _PROBTS,
    ),
    PaperVariant(
        "VolDy-VAE (ProbTS protocol)",
        "NMAE: median point forecast (ProbTS 'ND'), mean over windows",
        "nmae",
        _WINDOW_MEAN,
    ),
    PaperVariant(
        "VolDy-VAE (ProbTS protocol)",
        "'QICE': mean |coverage(q) - q| over q = 0.1 ... 0.9, x 100",
        "quantile_coverage_error",
        scale=100.0,
    ),
    PaperVariant(
        "VolDy-VAE (ProbTS protocol)",
        "Cov95 x 100",
        "coverage",
        {"interval_level": 0.95},
        scale=100.0,
    ),
    PaperVariant(
        "VolDy-VAE (ProbTS protocol)",
        "Sharp95: interval width / (test std + eps)",
        "normalized_interval_width",
        {"interval_level": 0.95},
        note="needs `series_scale` in every update (the module passes the series' test std)",
    ),
)


def _options(variant: PaperVariant) -> str:
    parts = [f"{k}={v!r}" for k, v in variant.options.items()]
    if variant.scale != 1.0:
        parts.append(f"x {variant.scale:g}")
    return ", ".join(parts)


def variants_table() -> str:
    """``PAPER_VARIANTS`` as a markdown table (paper, as printed, registry name, options, note)."""
    rows = [
        "| paper | metric as printed | registry name | options | note |",
        "|---|---|---|---|---|",
    ]
    for v in PAPER_VARIANTS:
        cells = [
            v.paper,
            v.printed,
            f"`{v.metric}`" if v.metric else "not provided",
            f"`{_options(v)}`" if _options(v) else "",
            v.note,
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
