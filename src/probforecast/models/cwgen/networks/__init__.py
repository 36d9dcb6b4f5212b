"""Generator networks of CW-Gen (the contract is in ``probforecast.models.cwgen.network``):
``ConditionalDenoiser`` (the default), ``TimeDiffNet`` (CW-TimeDiff), ``FlowTSNet`` (CW-FlowTS,
with its generator ``CWFlowTS``)."""

from probforecast.models.cwgen.denoiser import ConditionalDenoiser
from probforecast.models.cwgen.networks.flowts import CWFlowTS, FlowTSNet
from probforecast.models.cwgen.networks.timediff import TimeDiffNet

__all__ = ["CWFlowTS", "ConditionalDenoiser", "FlowTSNet", "TimeDiffNet"]
