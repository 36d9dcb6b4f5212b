"""Likelihoods. ``gls``: the low-rank + Kronecker GLS Gaussian of Zheng & Sun (NeurIPS 2024)."""

from probforecast.distributions._backend import gls_options
from probforecast.distributions._cholesky import GLSCholeskyError
from probforecast.distributions._gls_ops import gls_covariance_matrix
from probforecast.distributions.ar_correlation import ARCorrelation, ar_correlation
from probforecast.distributions.correlation import (
    ar_toeplitz_correlation,
    default_lengthscales,
    kernel_mixture_correlation,
    log_det_corr,
)
from probforecast.distributions.gls import GLSMultivariateNormal, gls_log_prob
from probforecast.distributions.gls_conditional import (
    GLSConditional,
    gls_conditional_next,
    sample_conditional,
)

__all__ = [
    "ARCorrelation",
    "GLSCholeskyError",
    "GLSConditional",
    "GLSMultivariateNormal",
    "ar_correlation",
    "ar_toeplitz_correlation",
    "default_lengthscales",
    "gls_conditional_next",
    "gls_covariance_matrix",
    "gls_log_prob",
    "gls_options",
    "kernel_mixture_correlation",
    "log_det_corr",
    "sample_conditional",
]
