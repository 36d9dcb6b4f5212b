"""Forecasters (``Forecaster`` subclasses) and the generic ``ForecastModule``."""

from probforecast.models.base import Forecaster
from probforecast.models.cwgen import JMCE, CWDiff, CWFlow, CWFlowTS, JMCESpec
from probforecast.models.gaussian_rnn import GaussianRNN
from probforecast.models.gls.gpvar import GPVar
from probforecast.models.gls.transformer import TransformerForecaster
from probforecast.models.seasonal_naive import SeasonalNaive
from probforecast.models.voldy.model import VolDyVAE
from probforecast.models.zero_shot import ZeroShotForecaster

__all__ = [
    "JMCE",
    "JMCESpec",
    "CWDiff",
    "CWFlow",
    "CWFlowTS",
    "Forecaster",
    "GPVar",
    "GaussianRNN",
    "SeasonalNaive",
    "TransformerForecaster",
    "VolDyVAE",
    "ZeroShotForecaster",
]
