"""CW-Gen: conditionally whitened generative forecasters (JMCE prior, CW-Diff, CW-Flow, and the
base models' networks: TimeDiff, FlowTS)."""

from probforecast.models.cwgen.covariance import (
    lower_factor_from_packed,
    sliding_covariance,
    triu_pack,
)
from probforecast.models.cwgen.diffusion import CWDiff
from probforecast.models.cwgen.flow import CWFlow
from probforecast.models.cwgen.generator import CWGenerator, load_jmce_state
from probforecast.models.cwgen.jmce import JMCE, JMCELoss, jmce_loss
from probforecast.models.cwgen.jmce_spec import JMCESpec
from probforecast.models.cwgen.network import GeneratorNetwork, build_network
from probforecast.models.cwgen.networks import (
    ConditionalDenoiser,
    CWFlowTS,
    FlowTSNet,
    TimeDiffNet,
)
from probforecast.models.cwgen.optim import CWAdamW
from probforecast.models.cwgen.whitening import (
    CholeskyWhitening,
    IdentityWhitening,
    SymmetricWhitening,
    Whitening,
)

__all__ = [
    "JMCE",
    "CWAdamW",
    "CWDiff",
    "CWFlow",
    "CWFlowTS",
    "CWGenerator",
    "CholeskyWhitening",
    "ConditionalDenoiser",
    "FlowTSNet",
    "GeneratorNetwork",
    "IdentityWhitening",
    "JMCELoss",
    "JMCESpec",
    "SymmetricWhitening",
    "TimeDiffNet",
    "Whitening",
    "build_network",
    "jmce_loss",
    "load_jmce_state",
    "lower_factor_from_packed",
    "sliding_covariance",
    "triu_pack",
]
