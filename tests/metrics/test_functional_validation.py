"""Input checks of the functional metrics at their boundaries, and the errors they raise."""

from __future__ import annotations

import pytest
import torch

from probforecast.metrics.functional import (
    coverage,
    crps_quantile,
    energy_score,
    prob_corr,
    qice_bin_counts,
    quantile_coverage_counts,
    variogram_score,
    window_mean_scores,
)
from probforecast.metrics.functional._sort import bitonic_sort_, quantile_positions
from probforecast.metrics.functional._validation import (
    check_forecast,
    check_history,
    check_level,
    check_levels,
)

from .helpers import make_forecast


def _forecast(**kw):
    f = make_forecast(b=2, s=4, q=3, n=2, p=5, **kw)
    return f["samples"], f["target"], f["past_target"]


# --- check_forecast ------------------------------------------------------------------------


def test_check_forecast_rejects_a_target_that_is_not_a_tensor():
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match="got samples of type Tensor and target of type list"):
        check_forecast(samples, target.tolist(), None)


def test_check_forecast_rejects_samples_that_are_not_a_tensor():
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match="got samples of type list and target of type Tensor"):
        check_forecast(samples.tolist(), target, None)


def test_check_forecast_rejects_an_integer_target_with_float_samples():
    samples, target, _ = _forecast()
    with pytest.raises(
        ValueError, match="must be floating point, got torch.float64 and torch.int64"
    ):
        check_forecast(samples, target.long(), None)


def test_check_forecast_rejects_target_and_mask_on_another_device():
    # the meta device stands in for an accelerator: shapes and dtypes but no data
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match="samples are on cpu but target is on meta"):
        check_forecast(samples, target.to("meta"), None)
    mask = torch.ones(target.shape, dtype=torch.bool, device="meta")
    with pytest.raises(ValueError, match="mask is on meta but target is on cpu"):
        check_forecast(samples, target, mask)


def test_check_forecast_names_the_wrong_mask_shape_or_type():
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match=r"got \(2, 3\)"):
        check_forecast(samples, target, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="got list"):
        check_forecast(samples, target, torch.ones(target.shape, dtype=torch.bool).tolist())


# --- check_history ---------------------------------------------------------------------------


def test_check_history_rejects_a_history_with_another_window_count():
    _, target, past = _forecast()
    with pytest.raises(ValueError, match=r"past_target must be \[B, P, N\] = \[2, P, 2\]"):
        check_history(torch.cat([past, past]), None, target, "prob_corr")


def test_check_history_rejects_an_integer_history():
    _, target, past = _forecast()
    with pytest.raises(
        ValueError, match="past_target must be floating point on cpu, got torch.int64"
    ):
        check_history(past.long(), None, target, "prob_corr")


def test_check_history_rejects_a_history_mask_of_another_shape():
    _, target, past = _forecast()
    bad = torch.ones(2, 4, 2, dtype=torch.bool)
    with pytest.raises(
        ValueError,
        match=r"past_observed must match past_target \(2, 5, 2\) on cpu, got \(2, 4, 2\)",
    ):
        check_history(past, bad, target, "prob_corr")


def test_check_history_turns_a_0_1_mask_into_bool():
    _, target, past = _forecast()
    gen = torch.Generator().manual_seed(3)
    observed = torch.rand(past.shape, generator=gen) < 0.5
    out = check_history(past, observed.double(), target, "prob_corr")
    assert out.dtype == torch.bool
    assert torch.equal(out, observed)
    assert torch.equal(check_history(past, observed, target, "prob_corr"), observed)


# --- levels ------------------------------------------------------------------------------------


def test_check_levels_rejects_a_non_sequence():
    with pytest.raises(ValueError, match="levels must be a sequence of floats, got 5"):
        check_levels(5, "levels")


def test_check_levels_closed_accepts_0_and_1_and_rejects_beyond():
    assert check_levels([0.0, 0.5, 1.0], "edges", closed=True) == (0.0, 0.5, 1.0)
    for bad in ([1.5], [-0.5]):
        with pytest.raises(
            ValueError, match=r"edges must be a non-empty sequence of levels in \[0, 1\]"
        ):
            check_levels(bad, "edges", closed=True)


def test_check_levels_open_rejects_0_and_1():
    for bad in ([0.0], [1.0], []):
        with pytest.raises(
            ValueError, match=r"levels must be a non-empty sequence of levels in \(0, 1\)"
        ):
            check_levels(bad, "levels")


def test_check_level_default_name_in_the_error():
    with pytest.raises(ValueError, match="^level must lie in"):
        check_level(1.5)


def test_quantile_coverage_counts_and_crps_quantile_name_their_levels_argument():
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match=r"^levels must be a non-empty sequence"):
        quantile_coverage_counts(samples, target, [0.5, 1.0])
    with pytest.raises(ValueError, match=r"^quantiles must be a non-empty sequence"):
        crps_quantile(samples, target, [0.0, 0.5])


def test_quantile_positions_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="quantile method must be one of"):
        quantile_positions([0.5], 10, "nearest")


def test_bitonic_sort_of_one_row_and_a_non_power_of_two():
    x = torch.tensor([[3.0, -1.0, 2.0]])
    assert torch.equal(bitonic_sort_(x.clone(), torch.empty_like(x)), x)
    y = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="power-of-two row count, got 3"):
        bitonic_sort_(y, torch.empty_like(y))


# --- score parameters --------------------------------------------------------------------------


def test_qice_bin_counts_needs_a_positive_integer_bin_count():
    samples, target, _ = _forecast()
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match="n_bins must be a positive integer"):
            qice_bin_counts(samples, target, bad)
    # one bin holds every truth
    one = qice_bin_counts(samples, target, 1)
    assert one.tolist() == [float(target.numel())]


def test_energy_score_beta_bounds_and_fair_sample_count():
    samples, target, _ = _forecast()
    for bad in (0.0, 2.5, -1.0):
        with pytest.raises(ValueError, match=r"beta must lie in \(0, 2\]"):
            energy_score(samples, target, beta=bad)
    with pytest.raises(
        ValueError, match="the fair energy score needs at least 2 samples, got S = 1"
    ):
        energy_score(samples[:, :1], target, fair=True)


def test_variogram_order_must_be_positive():
    samples, target, _ = _forecast()
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError, match="the variogram order p must be positive"):
            variogram_score(samples, target, p=bad)


def test_coverage_rejects_a_level_outside_0_1():
    samples, target, _ = _forecast()
    with pytest.raises(ValueError, match="^level must lie in"):
        coverage(samples, target, 1.0)


def test_prob_corr_with_a_history_of_wrong_window_count():
    samples, target, past = _forecast()
    with pytest.raises(ValueError, match="past_target must be"):
        prob_corr(samples, target, past[:1])


def test_window_mean_scores_name_the_score_whose_denominator_is_zero():
    samples, target, _ = _forecast()
    zero = torch.zeros_like(target)
    with pytest.raises(ValueError, match="^crps: a window has sum .* use the pooled metrics"):
        window_mean_scores(samples, zero)
    # series that cancel: sum |y| > 0 but |sum_i y_i| = 0 at every step
    cancel = torch.stack([target[..., 0], -target[..., 0]], dim=-1)
    with pytest.raises(ValueError, match="^crps_sum: a window has sum .* use the pooled metrics"):
        window_mean_scores(samples, cancel)
