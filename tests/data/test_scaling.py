"""``fit_scaler`` against numpy on masked data, for every scaling kind and the degenerate cases."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from probforecast.data.scaling import fit_scaler, observed_std


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    values = rng.normal(3.0, 2.0, size=(40, 4))
    observed = rng.random((40, 4)) > 0.3
    values[~observed] = np.nan
    return values, observed


def test_standard_is_the_mean_and_biased_std_of_the_observed_values():
    values, observed = _data()
    loc, scale = fit_scaler(torch.from_numpy(values), torch.from_numpy(observed), "standard")
    for n in range(values.shape[1]):
        seen = values[observed[:, n], n]
        assert loc[n].item() == pytest.approx(seen.mean())
        assert scale[n].item() == pytest.approx(seen.std())
    assert loc.dtype == scale.dtype == torch.float64


def test_mean_scaling_is_gluonts_mean_absolute_value_with_zero_location():
    values, observed = _data(1)
    loc, scale = fit_scaler(torch.from_numpy(values), torch.from_numpy(observed), "mean")
    expected = [np.abs(values[observed[:, n], n]).mean() for n in range(values.shape[1])]
    np.testing.assert_allclose(scale.numpy(), expected)
    assert torch.equal(loc, torch.zeros(4, dtype=torch.float64))
    assert loc.dtype == scale.dtype == torch.float64  # torch.equal ignores dtypes


def test_none_is_the_identity_in_the_values_dtype():
    values = torch.randn(10, 3, dtype=torch.float64)
    loc, scale = fit_scaler(values, torch.ones_like(values, dtype=torch.bool), "none")
    assert torch.equal(loc, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(scale, torch.ones(3, dtype=torch.float64))
    assert loc.dtype == scale.dtype == torch.float64  # torch.equal ignores dtypes


def test_a_single_observation_is_its_own_mean_and_gets_scale_one(caplog):
    """One observed step: the mean is that value (the count is 1, not clamped higher); zero
    spread, so the scale is 1 and the series is named in the warning."""
    values = torch.tensor([[5.0, 1.0], [float("nan"), 2.0], [float("nan"), 4.0]])
    observed = ~values.isnan()
    with caplog.at_level(logging.WARNING, logger="probforecast.data.scaling"):
        loc, scale = fit_scaler(values, observed, "standard")
    assert loc[0].item() == 5.0 and scale[0].item() == 1.0
    assert scale[1].item() == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert "1 series have zero spread on the training range" in caplog.text
    assert "their scale is set to 1: [0]" in caplog.text


def test_the_warning_counts_every_degenerate_series_and_lists_the_first_twenty(caplog):
    values = torch.zeros(5, 25)
    values[:, 3] = torch.arange(5.0)  # one series with spread
    with caplog.at_level(logging.WARNING, logger="probforecast.data.scaling"):
        _, scale = fit_scaler(values, torch.ones_like(values, dtype=torch.bool), "mean")
    degenerate = [n for n in range(25) if n != 3]
    assert scale[3].item() == pytest.approx(2.0) and (scale[degenerate] == 1).all()
    assert (
        f"24 series have zero spread on the training range (constant or unobserved); their scale is set to 1: {degenerate[:20]}"
        in caplog.text
    )


def test_unknown_kind_names_the_choices():
    values = torch.zeros(3, 2)
    with pytest.raises(
        ValueError, match=r"scaling must be one of 'standard', 'mean', 'none'; got 'max'"
    ):
        fit_scaler(values, torch.ones_like(values, dtype=torch.bool), "max")  # type: ignore[arg-type]


def test_observed_std_is_the_population_std_of_the_observed_entries():
    rng = np.random.default_rng(5)
    values = rng.normal(3.0, 2.0, size=(40, 3))
    values[5:9, 1] = np.nan
    values[:, 2] = np.nan  # a series never observed
    values[0, 2] = np.inf
    got = observed_std(torch.from_numpy(values))
    expected = np.nanstd(np.where(np.isfinite(values), values, np.nan)[:, :2], axis=0)
    np.testing.assert_allclose(got[:2].numpy(), expected, rtol=1e-12)
    assert got[2] == 0.0
