"""The GLS family (Zheng & Sun, NeurIPS 2024): GPVar and the decoder-only Transformer on the
low-rank-plus-Kronecker GLS likelihood (``probforecast.distributions.gls``), with their blocks:
the shared forecaster base (``lowrank_ar``), the correlation head (``temporal_correlation``),
output heads, lag features, the Gaussian copula marginal and the cached causal encoder."""

from probforecast.models.gls.gpvar import GPVar
from probforecast.models.gls.lowrank_ar import LowRankARForecaster
from probforecast.models.gls.transformer import TransformerForecaster

__all__ = ["GPVar", "LowRankARForecaster", "TransformerForecaster"]
