"""``window_mean_scores`` (the GLS paper's per-window aggregation) against properscoring and a
NumPy energy score with the U-statistic pairwise term, window by window."""

from __future__ import annotations

import numpy as np
import properscoring as ps
import pytest
import torch

from probforecast.metrics.functional import window_mean_scores


def _energy_fair(samples: np.ndarray, y: np.ndarray) -> float:
    """ES = mean_s ||x_s - y||_F - 1/(S(S-1)) sum_{s<s'} ||x_s - x_s'||_F (the GLS code)."""
    s = samples.shape[0]
    first = np.mean([np.linalg.norm(x - y) for x in samples])
    pairs = sum(np.linalg.norm(samples[i] - samples[j]) for i in range(s) for j in range(i + 1, s))
    return first - pairs / (s * (s - 1))


def test_scores_match_the_per_window_references():
    rng = np.random.default_rng(0)
    b, s, q, n = 3, 40, 5, 4
    scales = np.array([1.0, 10.0, -0.1])[:, None, None]  # different scales, one negative window
    target = rng.normal(2.0, 1.0, (b, q, n)) * scales
    samples = target[:, None] + rng.normal(0, 1.0, (b, s, q, n)) * scales[:, None]
    got = window_mean_scores(torch.tensor(samples), torch.tensor(target))
    for w in range(b):
        point = ps.crps_ensemble(target[w], np.moveaxis(samples[w], 0, -1))
        np.testing.assert_allclose(
            got["crps"][w], point.sum() / np.abs(target[w]).sum(), rtol=1e-10
        )
        ysum, xsum = target[w].sum(-1), samples[w].sum(-1)  # [Q], [S, Q]
        crps_sum = ps.crps_ensemble(ysum, xsum.T).sum() / np.abs(ysum).sum()
        np.testing.assert_allclose(got["crps_sum"][w], crps_sum, rtol=1e-10)
        np.testing.assert_allclose(
            got["energy_score"][w], _energy_fair(samples[w], target[w]), rtol=1e-10
        )
    # the window mean differs from the pooled ratio when scales differ
    pooled = (
        sum(ps.crps_ensemble(target[w], np.moveaxis(samples[w], 0, -1)).sum() for w in range(b))
        / np.abs(target).sum()
    )
    assert abs(float(got["crps"].mean()) - pooled) > 1e-3


def test_masked_entries_are_left_out():
    rng = np.random.default_rng(1)
    target = rng.normal(3.0, 1.0, (1, 4, 3))
    samples = target[:, None] + rng.normal(0, 0.5, (1, 30, 4, 3))
    mask = np.ones((1, 4, 3), bool)
    mask[0, :, 2] = False  # series 2 unobserved: scores equal those of the first two series
    polluted = target.copy()
    polluted[0, :, 2] = np.nan
    got = window_mean_scores(torch.tensor(samples), torch.tensor(polluted), torch.tensor(mask))
    ref = window_mean_scores(torch.tensor(samples[..., :2]), torch.tensor(target[..., :2]))
    for key in ("crps", "crps_sum", "energy_score"):
        torch.testing.assert_close(got[key], ref[key])


def test_a_window_with_zero_sum_is_an_error():
    with pytest.raises(ValueError, match="sum \\|y\\| = 0"):
        window_mean_scores(torch.ones(1, 5, 2, 2), torch.zeros(1, 2, 2))
