"""Synthetic multivariate data with known ground truth: the correlated-seasonal toy data,
KernelSynth, TimePFN's LMCSynth and DynLMC (spec-dynlmc), cached corpora and mixing."""

from probforecast.data.synthetic.correlated_seasonal import (
    CorrelatedSeasonalSample,
    generate_correlated_seasonal,
)
from probforecast.data.synthetic.dynlmc import (
    PRESETS,
    VARIANTS,
    DynLMCConfig,
    ar1_paths,
    generate_dynlmc,
    ground_truth_covariance,
    mix_lagged,
    softmax,
    sticky_hmm,
)
from probforecast.data.synthetic.gp_sampler import GPSampler, dense_gp_sample
from probforecast.data.synthetic.kernels import KERNEL_BANK, kernel_matrix, random_kernel
from probforecast.data.synthetic.lmc import kernel_synth, lmc_synth
from probforecast.data.synthetic.sample import DynLMCSample
from probforecast.data.synthetic.store import (
    GENERATORS,
    CorpusSpec,
    SyntheticCorpus,
    generate_sample,
    load_corpus,
)

__all__ = [
    "GENERATORS",
    "KERNEL_BANK",
    "PRESETS",
    "VARIANTS",
    "CorpusSpec",
    "CorrelatedSeasonalSample",
    "DynLMCConfig",
    "DynLMCSample",
    "GPSampler",
    "SyntheticCorpus",
    "ar1_paths",
    "dense_gp_sample",
    "generate_correlated_seasonal",
    "generate_dynlmc",
    "generate_sample",
    "ground_truth_covariance",
    "kernel_matrix",
    "kernel_synth",
    "lmc_synth",
    "load_corpus",
    "mix_lagged",
    "random_kernel",
    "softmax",
    "sticky_hmm",
]
