"""VolDy-VAE's likelihood helpers and the scale-smoothness diagnostic against closed forms,
numpy and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from probforecast.models.noise import SampleNoise
from probforecast.models.voldy.diagnostics import lag1_autocorrelation
from probforecast.models.voldy.likelihoods import elementwise_nll, predictive_std, sample_noise


@pytest.mark.parametrize(
    ("kind", "factor"),
    [("gaussian", 1.0), ("laplace", math.sqrt(2.0)), ("student_t", math.sqrt(5.0 / 3.0))],
)
def test_predictive_std_closed_forms_and_monte_carlo(kind, factor):
    """sigma, sqrt(2) b, sigma sqrt(nu / (nu - 2)) at nu = 5; the std of 200k draws of
    ``sample_noise`` agrees within 2 %."""
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64)
    df = torch.tensor(5.0, dtype=torch.float64)
    got = predictive_std(kind, scale, df)
    torch.testing.assert_close(got, scale * factor)
    loc = torch.zeros(2, 200_000, dtype=torch.float64)
    draws = sample_noise(
        kind, loc, scale[:, None].expand_as(loc), df, SampleNoise.per_window([1, 2])
    )
    torch.testing.assert_close(draws.std(1), got, rtol=0.02, atol=0.0)


def test_student_t_std_is_infinite_at_two_or_fewer_degrees_of_freedom():
    df = torch.tensor([1.5, 2.0, 2.5], dtype=torch.float64)
    got = predictive_std("student_t", torch.ones(3, dtype=torch.float64), df)
    assert torch.isinf(got[:2]).all() and got[2].item() == pytest.approx(math.sqrt(5.0))


@pytest.mark.parametrize("fn", [predictive_std, elementwise_nll, sample_noise])
def test_helpers_name_the_likelihoods_and_need_df_for_student_t(fn):
    x = torch.ones(1, 2)
    args = (x,) if fn is predictive_std else (x, x) if fn is sample_noise else (x, x, x)
    with pytest.raises(
        ValueError,
        match=r"likelihood must be one of \('gaussian', 'laplace', 'student_t'\); got 'cauchy'",
    ):
        fn("cauchy", *args)
    with pytest.raises(ValueError, match="the student_t likelihood needs df"):
        fn("student_t", *args)


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "student_t"])
def test_elementwise_nll_matches_torch_distributions_up_to_the_stated_constants(kind):
    """Gaussian and Laplace drop the parameter-free constants (log sqrt(2 pi), log 2);
    Student-t is the full negative log density."""
    g = torch.Generator().manual_seed(0)
    value = torch.randn(50, generator=g, dtype=torch.float64)
    loc = torch.randn(50, generator=g, dtype=torch.float64)
    scale = torch.rand(50, generator=g, dtype=torch.float64) + 0.2
    df = torch.tensor(4.0, dtype=torch.float64)
    dist, const = {
        "gaussian": (torch.distributions.Normal(loc, scale), 0.5 * math.log(2 * math.pi)),
        "laplace": (torch.distributions.Laplace(loc, scale), math.log(2.0)),
        "student_t": (torch.distributions.StudentT(df, loc, scale), 0.0),
    }[kind]
    torch.testing.assert_close(
        elementwise_nll(kind, value, loc, scale, df), -dist.log_prob(value) - const
    )


def test_lag1_autocorrelation_is_numpys_pearson_of_the_lagged_segments():
    g = torch.Generator().manual_seed(1)
    sigma = torch.randn(3, 20, 2, generator=g, dtype=torch.float64).cumsum(1)
    got = lag1_autocorrelation(sigma)
    for b in range(3):
        for c in range(2):
            s = sigma[b, :, c].numpy()
            assert got[b, c].item() == pytest.approx(np.corrcoef(s[1:], s[:-1])[0, 1])


def test_lag1_autocorrelation_is_nan_where_undefined():
    sigma = torch.ones(2, 10, 2, dtype=torch.float64)
    sigma[1, :, 1] = torch.arange(10.0)  # the one defined (a ramp: correlation 1)
    got = lag1_autocorrelation(sigma)
    assert torch.isnan(got[0]).all() and torch.isnan(got[1, 0])
    assert got[1, 1].item() == pytest.approx(1.0)
    assert torch.isnan(lag1_autocorrelation(torch.randn(2, 2, 3))).all()  # T < 3
    with pytest.raises(ValueError, match=r"expects \[B, T, C\]; got shape \(4, 5\)"):
        lag1_autocorrelation(torch.ones(4, 5))
