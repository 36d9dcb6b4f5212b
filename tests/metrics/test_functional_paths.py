"""Fast paths, block splits, autograd paths, masks and result dtypes of the functional metrics,
each against an independent numpy / closed-form reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from probforecast.metrics.functional import _sort as sort_module
from probforecast.metrics.functional import (
    central_interval,
    coverage,
    crps,
    crps_sum,
    energy_score,
    mae,
    prob_corr,
    qice,
    qice_bin_counts,
    quantile_coverage_counts,
    quantile_coverage_error,
    sample_quantiles,
    set_cpu_sort_method,
    variogram_score,
)
from probforecast.metrics.functional import variogram as variogram_module
from probforecast.metrics.functional._sort import _network_blocks, quantile_positions
from probforecast.metrics.functional.calibration import interval_width
from probforecast.metrics.functional.point import window_point_sums
from probforecast.metrics.functional.sample_error import sample_error_sums

from .helpers import make_forecast, pearson_prob_corr

# --- numpy references ----------------------------------------------------------------------------


def np_energy(samples, target, beta, fair):
    """Energy score per window from the pairwise definition (Gneiting & Raftery 2007)."""
    b, s = samples.shape[:2]
    x = samples.reshape(b, s, -1)
    y = target.reshape(b, 1, -1)
    first = (np.linalg.norm(x - y, axis=-1) ** beta).mean(-1)
    pair = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1) ** beta
    norm = s * (s - 1) if fair else s * s
    return first - pair.sum((1, 2)) / (2.0 * norm)


def np_variogram(samples, target, p, mask=None):
    """Variogram score per window and step over unordered pairs i < j (both observed)."""
    b, s, q, n = samples.shape
    out = np.zeros((b, q))
    for w in range(b):
        for t in range(q):
            for i in range(n):
                for j in range(i + 1, n):
                    if mask is not None and not (mask[w, t, i] and mask[w, t, j]):
                        continue
                    obs = abs(target[w, t, i] - target[w, t, j]) ** p
                    pred = np.mean(np.abs(samples[w, :, t, i] - samples[w, :, t, j]) ** p)
                    out[w, t] += (obs - pred) ** 2
    return out


def np_crps(x, y, fair=False):
    """CRPS of the ensemble ``x [S]`` at ``y`` from the pairwise definition."""
    s = x.size
    spread = np.abs(x[:, None] - x[None]).sum() / (2.0 * (s * (s - 1) if fair else s * s))
    return np.abs(x - y).mean() - spread


def np_corr(seq, keep):
    """Correlation matrix of ``seq [T, N]`` over observed steps (see prob_corr's docstring)."""
    t, n = seq.shape
    z = np.zeros((t, n))
    for i in range(n):
        obs = keep[:, i]
        if obs.sum() == 0:
            continue
        v = seq[obs, i]
        sd = v.std()
        if sd > 0:
            z[obs, i] = (v - v.mean()) / sd
    c = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            both = keep[:, i] & keep[:, j]
            c[i, j] = (z[both, i] * z[both, j]).sum() / max(both.sum(), 1)
    return c


def np_prob_corr(samples, target, history, mask, past_mask):
    """ProbCorr per window with masks, one loop per window and sample."""
    b, s, q, n = samples.shape
    out = np.zeros(b)
    for w in range(b):
        keep = np.concatenate([past_mask[w], mask[w]])
        pairs = [
            (i, j)
            for i in range(n)
            for j in range(i + 1, n)
            if (mask[w, :, i] & mask[w, :, j]).any()
        ]
        truth = np_corr(np.concatenate([history[w], target[w]]), keep)
        per_sample = []
        for k in range(s):
            c = np_corr(np.concatenate([history[w], samples[w, k]]), keep)
            per_sample.append(np.mean([abs(c[i, j] - truth[i, j]) for i, j in pairs]))
        out[w] = np.mean(per_sample) if pairs else 0.0
    return out


# --- energy score ----------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.7])
@pytest.mark.parametrize("fair", [False, True])
def test_energy_score_fast_paths_match_the_pairwise_definition(beta, fair):
    f = make_forecast(b=3, s=2, q=2, n=3, seed=11)
    got = energy_score(f["samples"], f["target"], beta=beta, fair=fair)
    want = np_energy(f["samples"].numpy(), f["target"].numpy(), beta, fair)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_energy_score_of_no_window_is_empty():
    samples = torch.zeros(0, 3, 2, 2, dtype=torch.float64)
    out = energy_score(samples, torch.zeros(0, 2, 2, dtype=torch.float64))
    assert out.shape == (0,)


# --- variogram score --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_variogram_fast_paths_match_numpy(p):
    f = make_forecast(b=2, s=5, q=2, n=4, seed=12)
    got = variogram_score(f["samples"], f["target"], p=p)
    want = np_variogram(f["samples"].numpy(), f["target"].numpy(), p)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_variogram_blocked_over_series_and_windows_with_a_mask(monkeypatch):
    # 60 elements per block: blocks of 2 series and 3 windows, so off-diagonal series blocks
    # (whose pair mask has no triangle) and several window blocks both occur
    monkeypatch.setattr(variogram_module, "_BLOCK_ELEMENTS", 60)
    f = make_forecast(b=7, s=3, q=2, n=5, seed=13, observed=0.7)
    target = torch.nan_to_num(f["target"])
    got = variogram_score(f["samples"], target, p=1.5, mask=f["mask"])
    want = np_variogram(f["samples"].numpy(), target.numpy(), 1.5, f["mask"].numpy())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_variogram_of_a_single_series_is_zero_per_window_and_step():
    f = make_forecast(b=3, s=4, q=5, n=1, seed=14)
    out = variogram_score(f["samples"], f["target"])
    assert out.shape == (3, 5)
    assert torch.equal(out, torch.zeros(3, 5, dtype=torch.float64))


def test_variogram_gradient_matches_finite_differences():
    f = make_forecast(b=2, s=3, q=1, n=3, seed=15)
    samples = f["samples"].clone().requires_grad_(True)

    def fn(x):
        return variogram_score(x, f["target"], p=1.5)

    assert torch.autograd.gradcheck(fn, (samples,), eps=1e-6, atol=1e-6)
    want = np_variogram(f["samples"].numpy(), f["target"].numpy(), 1.5)
    np.testing.assert_allclose(fn(samples).detach().numpy(), want, rtol=1e-10)


def test_variogram_without_autograd_emits_no_warning():
    # the no-grad path writes into a workspace: a wrongly shaped output would be resized (warning)
    f = make_forecast(b=2, s=4, q=3, n=4, seed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = variogram_score(f["samples"], f["target"], p=0.5)
    want = np_variogram(f["samples"].numpy(), f["target"].numpy(), 0.5)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)


# --- CRPS ---------------------------------------------------------------------------------------------


def test_crps_sum_fair_and_masked_steps():
    f = make_forecast(b=2, s=4, q=3, n=3, seed=17)
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[0, 1] = False  # a step with no observed series scores 0
    mask[1, 2, 0] = False
    got = crps_sum(f["samples"], f["target"], fair=True, mask=mask)
    x = torch.where(mask[:, None], f["samples"], 0.0).sum(-1).numpy()
    y = torch.where(mask, f["target"], 0.0).sum(-1).numpy()
    want = np.array([[np_crps(x[w, :, t], y[w, t], fair=True) for t in range(3)] for w in range(2)])
    want[0, 1] = 0.0
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


# --- sorting paths ----------------------------------------------------------------------------------


def test_numpy_sort_path_with_several_window_blocks():
    # S * M = 512 samples per window: blocks of 2**18 / 512 = 512 windows, so 513 windows split
    gen = torch.Generator().manual_seed(18)
    samples = torch.randn(513, 512, 1, 1, generator=gen)
    got = sample_quantiles(samples, (0.1, 0.5))
    want = np.quantile(samples.numpy().astype(np.float64), [0.1, 0.5], axis=1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_network_sort_path_with_several_window_blocks():
    # S = 100 (P = 128) and 300 columns per window: 1536 // 300 = 5 windows per block
    gen = torch.Generator().manual_seed(19)
    samples = torch.randn(8, 100, 30, 10, generator=gen, dtype=torch.float64)
    previous = set_cpu_sort_method("network")
    try:
        got = sample_quantiles(samples, (0.05, 0.5, 0.95))
    finally:
        set_cpu_sort_method(previous)
    want = np.quantile(samples.numpy(), [0.05, 0.5, 0.95], axis=1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_network_method_sorts_with_the_network_up_to_4096_samples(monkeypatch):
    calls = []
    real = sort_module.bitonic_sort_

    def spy(x, scratch):
        calls.append(x.shape)
        return real(x, scratch)

    monkeypatch.setattr(sort_module, "bitonic_sort_", spy)
    gen = torch.Generator().manual_seed(20)
    samples = torch.randn(1, 4096, 1, 1, generator=gen, dtype=torch.float64)
    previous = set_cpu_sort_method("network")
    try:
        got = sample_quantiles(samples, (0.5,))
    finally:
        set_cpu_sort_method(previous)
    assert calls and calls[0][0] == 4096
    np.testing.assert_allclose(got.numpy(), np.quantile(samples.numpy(), [0.5], axis=1))


def test_network_pads_to_the_next_power_of_two():
    # module docstring: P = S rounded up to a power of two (at least 2)
    assert _network_blocks(1, 100, 1)[0] == 128
    assert _network_blocks(1, 2, 1)[0] == 2
    assert _network_blocks(1, 3, 1)[0] == 4


def test_quantile_positions_default_is_numpy_linear():
    x = np.sort(np.random.default_rng(21).normal(size=7))
    levels = [0.1, 0.25, 0.5, 0.9]
    lo, hi, frac = quantile_positions(levels, x.size)
    got = x[lo] + np.array(frac) * (x[hi] - x[lo])
    np.testing.assert_allclose(got, np.quantile(x, levels), rtol=1e-12)


# --- calibration ------------------------------------------------------------------------------------


def _grid_forecast():
    """Samples 0, 1, ..., 10 at every point: every quantile j/10 is the integer j."""
    samples = torch.arange(11, dtype=torch.float64).view(1, 11, 1, 1).expand(1, 11, 1, 3).clone()
    return samples


def test_qice_bins_put_a_truth_on_an_edge_into_the_lower_bin():
    samples = _grid_forecast()
    target = torch.tensor([[[5.0, 0.0, 10.0]]], dtype=torch.float64)
    # CARD: bin = number of edges strictly below y, outliers in the end bins
    want = np.zeros(10)
    want[4] += 1  # y = 5: edges 0..4 below
    want[0] += 1  # y = 0: no edge below -> bin 1
    want[9] += 1  # y = 10: edges 0..9 below
    np.testing.assert_array_equal(qice_bin_counts(samples, target, 10).numpy(), want)


def test_qice_with_a_mask_uses_only_observed_truths():
    f = make_forecast(b=3, s=20, q=4, n=2, seed=22, observed=0.6)
    mask = f["mask"]
    target = torch.nan_to_num(f["target"])
    x = f["samples"].numpy().transpose(0, 2, 3, 1)[mask.numpy()]  # [points, S]
    y = target.numpy()[mask.numpy()]
    edges = np.quantile(x, np.arange(11) / 10, axis=1)  # [11, points]
    bins = np.clip((y[None] > edges).sum(0), 1, 10) - 1
    ratio = np.bincount(bins, minlength=10) / y.size
    want = np.abs(ratio - 0.1).mean()
    np.testing.assert_allclose(qice(f["samples"], target, 10, mask=mask).item(), want, rtol=1e-12)


def test_quantile_coverage_counts_truth_equal_to_the_quantile_is_not_below():
    samples = _grid_forecast()
    target = torch.tensor([[[5.0, 4.0, 6.0]]], dtype=torch.float64)
    below, count = quantile_coverage_counts(samples, target, [0.5])
    assert below.tolist() == [1.0]  # only y = 4 < 5
    assert count.dtype == torch.float64 and count.item() == 3.0
    mask = torch.tensor([[[True, True, False]]])
    below, count = quantile_coverage_counts(samples, target, [0.5], mask=mask)
    assert count.dtype == torch.float64 and count.item() == 2.0


def test_quantile_coverage_error_with_a_mask():
    f = make_forecast(b=3, s=15, q=4, n=2, seed=23, observed=0.6)
    mask = f["mask"]
    target = torch.nan_to_num(f["target"])
    levels = [0.2, 0.5, 0.8]
    x = f["samples"].numpy().transpose(0, 2, 3, 1)[mask.numpy()]
    y = target.numpy()[mask.numpy()]
    quant = np.quantile(x, levels, axis=1)
    want = np.abs((y[None] < quant).mean(1) - np.array(levels)).mean()
    got = quantile_coverage_error(f["samples"], target, levels, mask=mask)
    np.testing.assert_allclose(got.item(), want, rtol=1e-12)


def test_central_interval_and_coverage_default_to_the_90_percent_interval():
    f = make_forecast(b=2, s=21, q=3, n=2, seed=24)
    lower, upper = central_interval(f["samples"])
    want = np.quantile(f["samples"].numpy(), [0.05, 0.95], axis=1)
    np.testing.assert_allclose(lower.numpy(), want[0], rtol=1e-12)
    np.testing.assert_allclose(upper.numpy(), want[1], rtol=1e-12)
    y = f["target"].numpy()
    want_cov = ((want[0] <= y) & (y <= want[1])).mean()
    np.testing.assert_allclose(coverage(f["samples"], f["target"]).item(), want_cov, rtol=1e-12)


def test_coverage_counts_a_truth_on_either_interval_end_as_inside():
    # samples 0, 1, 2: the 50% interval is [0.25-quantile, 0.75-quantile] = [0.5, 1.5]
    samples = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 1, 4)
    target = torch.tensor([[[0.5, 1.5, 0.4, 1.6]]], dtype=torch.float64)
    assert coverage(samples, target, 0.5).item() == 0.5


def test_interval_width_keeps_the_samples_dtype_with_a_float64_scale():
    f = make_forecast(b=2, s=9, q=3, n=2, seed=25)
    samples = f["samples"].float()
    scale = f["series_scale"]  # float64
    width = interval_width(samples, f["target"].float(), 0.8, series_scale=scale)
    assert width.dtype == torch.float32
    q = np.quantile(samples.numpy().astype(np.float64), [0.1, 0.9], axis=1)
    want = (q[1] - q[0]) / (scale.numpy()[:, None] + 1e-8)
    np.testing.assert_allclose(width.numpy(), want, rtol=1e-5)


# --- sums in float64 ----------------------------------------------------------------------------------


def test_sample_error_sums_are_float64_for_float32_input():
    f = make_forecast(b=3, s=6, q=4, n=2, seed=26, observed=0.7)
    mask = f["mask"]
    target = torch.nan_to_num(f["target"])
    x32, y32 = f["samples"].float(), target.float()
    for m in (None, mask):
        sums = sample_error_sums(x32, y32, mask=m)
        assert all(v.dtype == torch.float64 for v in sums)
        keep = np.ones(y32.shape, bool) if m is None else m.numpy()
        err = x32.double().numpy() - y32.double().numpy()[:, None]
        np.testing.assert_allclose(
            sums.squared_error.item(), (err**2).mean(1)[keep].sum(), rtol=1e-6
        )
        np.testing.assert_allclose(
            sums.absolute_error.item(), np.abs(err).mean(1)[keep].sum(), rtol=1e-6
        )
        assert sums.num_observed.item() == keep.sum()


def test_window_point_sums_are_float64_per_window():
    f = make_forecast(b=3, s=2, q=4, n=2, seed=27, observed=0.7)
    point, target = f["samples"][:, 0].float(), torch.nan_to_num(f["target"]).float()
    for m in (None, f["mask"]):
        sums = window_point_sums(point, target, m)
        assert all(v.dtype == torch.float64 and v.shape == (3,) for v in sums)
        keep = np.ones(target.shape, bool) if m is None else m.numpy()
        err = np.where(keep, point.double().numpy() - target.double().numpy(), 0.0)
        np.testing.assert_allclose(sums.absolute_error.numpy(), np.abs(err).sum((1, 2)), rtol=1e-6)
        np.testing.assert_array_equal(sums.num_observed.numpy(), keep.sum((1, 2)))


def test_window_point_sums_of_no_window_are_empty():
    empty = torch.zeros(0, 4, 2)
    sums = window_point_sums(empty, empty, None)
    assert all(v.shape == (0,) and v.dtype == torch.float64 for v in sums)


def test_mae_with_a_mask_uses_only_observed_points():
    f = make_forecast(b=3, s=5, q=4, n=2, seed=28, observed=0.6)
    mask = f["mask"].numpy()
    err = np.abs(f["samples"].numpy().mean(1) - np.nan_to_num(f["target"].numpy()))
    got = mae(f["samples"], f["target"], mask=f["mask"])
    np.testing.assert_allclose(got.item(), err[mask].mean(), rtol=1e-12)


# --- ProbCorr -------------------------------------------------------------------------------------------


def test_prob_corr_with_a_constant_truth_series_and_no_mask():
    # a series constant over history and horizon has correlation 0 (also with itself), while
    # the samples' version of it varies: the diagonal of |C(Z) - C(Z_s)| is not 0 there
    f = make_forecast(b=3, s=4, q=3, n=3, p=4, seed=29)
    history, target = f["past_target"].clone(), f["target"].clone()
    history[..., 1] = 2.0
    target[..., 1] = 2.0
    score, valid = prob_corr(f["samples"], target, history)
    ones = np.ones(target.shape, bool)
    want = np_prob_corr(
        f["samples"].numpy(), target.numpy(), history.numpy(), ones, np.ones(history.shape, bool)
    )
    np.testing.assert_allclose(score.numpy(), want, rtol=1e-10, atol=1e-12)
    assert valid.all()


def test_prob_corr_with_sparse_masks_matches_the_definition():
    # window 0: series 0 (steps 0, 1, 3) and series 1 (steps 3, 4, 5) are observed together at
    # one step only; series 3 is observed at one step. Window 1: series 0 and 1 share the whole
    # history but no horizon step, so their pair does not count.
    f = make_forecast(b=2, s=3, q=3, n=4, p=3, seed=30)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    past_mask = torch.ones(2, 3, 4, dtype=torch.bool)
    past_mask[0, 2, 0] = False
    mask[0, 1:, 0] = False
    past_mask[0, :, 1] = False
    past_mask[0, :, 3] = False
    mask[0, 1:, 3] = False
    mask[1, 2, 0] = False
    mask[1, :2, 1] = False
    score, valid = prob_corr(
        f["samples"], f["target"], f["past_target"], mask=mask, past_mask=past_mask
    )
    want = np_prob_corr(
        f["samples"].numpy(),
        f["target"].numpy(),
        f["past_target"].numpy(),
        mask.numpy(),
        past_mask.numpy(),
    )
    np.testing.assert_allclose(score.numpy(), want, rtol=1e-10, atol=1e-12)
    assert valid.all()


def test_crps_masked_points_score_zero():
    f = make_forecast(b=2, s=5, q=2, n=2, seed=31, observed=0.6)
    got = crps(f["samples"], f["target"], mask=f["mask"])
    x, y, m = f["samples"].numpy(), f["target"].numpy(), f["mask"].numpy()
    for w in range(2):
        for t in range(2):
            for i in range(2):
                want = np_crps(x[w, :, t, i], y[w, t, i]) if m[w, t, i] else 0.0
                np.testing.assert_allclose(got[w, t, i].item(), want, rtol=1e-12, atol=1e-14)


def test_prob_corr_keeps_float16_and_matches_the_float64_reference():
    f = make_forecast(b=2, s=5, q=6, n=3, p=8, seed=32)
    score, valid = prob_corr(f["samples"].half(), f["target"].half(), f["past_target"].half())
    assert score.dtype == torch.float16 and valid.all()
    x, y, h = (f[k].half().double().numpy() for k in ("samples", "target", "past_target"))
    want = [pearson_prob_corr(x[w : w + 1], y[w : w + 1], h[w : w + 1]) for w in range(2)]
    np.testing.assert_allclose(score.double().numpy(), want, rtol=5e-3)
