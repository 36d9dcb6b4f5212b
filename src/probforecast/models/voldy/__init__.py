"""Building blocks of VolDy-VAE (``probforecast.models.VolDyVAE``): MLPs, scale heads,
likelihoods and the scale-smoothness diagnostic."""

from probforecast.models.voldy.diagnostics import scale_smoothness
from probforecast.models.voldy.layers import MLP, MLPScaleHead, RecurrentScaleHead, build_scale_head
from probforecast.models.voldy.likelihoods import LIKELIHOODS, elementwise_nll, sample_noise

__all__ = [
    "LIKELIHOODS",
    "MLP",
    "MLPScaleHead",
    "RecurrentScaleHead",
    "build_scale_head",
    "elementwise_nll",
    "sample_noise",
    "scale_smoothness",
]
