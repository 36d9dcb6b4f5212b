"""Likelihoods. ``gls``: the low-rank + Kronecker GLS Gaussian of Zheng & Sun (NeurIPS 2024)."""

from probforecast.distributions.gls import (
    GLSCholeskyError,
    GLSConditional,
    GLSMultivariateNormal,
    ar_toeplitz_correlation,
    default_lengthscales,
    gls_conditional_next,
    gls_covariance_matrix,
    gls_log_prob,
    gls_options,
    kernel_mixture_correlation,
    log_det_corr,
    sample_conditional,
)

__all__ = [
    "GLSCholeskyError",
    "GLSConditional",
    "GLSMultivariateNormal",
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
