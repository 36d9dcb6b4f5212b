"""ProbCorr against a numpy implementation with np.corrcoef."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.metrics import ProbCorr
from probforecast.metrics.functional import correlation as correlation_module
from probforecast.metrics.functional import prob_corr

from .helpers import make_forecast, pearson_prob_corr


@pytest.mark.parametrize("block", [None, 64])
def test_prob_corr_matches_numpy_corrcoef(block, monkeypatch):
    data = make_forecast(b=4, s=9, q=5, n=4, p=7, seed=1)
    if block is not None:  # one window and a few samples per block
        monkeypatch.setattr(correlation_module, "_BLOCK_ELEMENTS", block)
    scores, valid = prob_corr(data["samples"], data["target"], data["past_target"])
    assert valid.all()
    ref = pearson_prob_corr(
        data["samples"].numpy(), data["target"].numpy(), data["past_target"].numpy()
    )
    assert scores.mean().item() == pytest.approx(ref, rel=1e-9)


def test_prob_corr_is_zero_when_samples_equal_the_truth():
    data = make_forecast(b=3, s=4, q=6, n=5, seed=2)
    samples = data["target"].unsqueeze(1).expand(-1, 4, -1, -1)
    metric = ProbCorr()
    metric.update(samples, data["target"], past_target=data["past_target"])
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-12)
    other = ProbCorr()
    other.update(data["samples"], data["target"], past_target=data["past_target"])
    assert other.compute().item() > 0.05


def test_prob_corr_masked_steps_equal_dropping_them():
    data = make_forecast(b=3, s=6, q=5, n=4, p=6, seed=3)
    x, y, h = data["samples"], data["target"], data["past_target"]
    mask = torch.ones(3, 5, 4, dtype=torch.bool)
    mask[:, 1] = False  # a whole horizon step
    past_mask = torch.ones(3, 6, 4, dtype=torch.bool)
    past_mask[:, 4] = False
    y_nan = torch.where(mask, y, float("nan"))
    scores, _ = prob_corr(x, y_nan, h, mask=mask, past_mask=past_mask)
    keep_f, keep_p = [0, 2, 3, 4], [0, 1, 2, 3, 5]
    expected, _ = prob_corr(x[:, :, keep_f], y[:, keep_f], h[:, keep_p])
    torch.testing.assert_close(scores, expected)


def test_prob_corr_pairs_never_observed_together_are_skipped():
    data = make_forecast(b=2, s=5, q=4, n=3, p=4, seed=4)
    mask = torch.ones(2, 4, 3, dtype=torch.bool)
    past_mask = torch.ones(2, 4, 3, dtype=torch.bool)
    mask[1, :, 1:] = False  # window 1: only series 0 observed
    past_mask[1, :, 1:] = False
    scores, valid = prob_corr(
        data["samples"], data["target"], data["past_target"], mask=mask, past_mask=past_mask
    )
    assert valid.tolist() == [True, False] and scores[1] == 0
    metric = ProbCorr()
    metric.update(
        data["samples"],
        data["target"],
        mask,
        past_target=data["past_target"],
        past_observed=past_mask,
    )
    assert metric.compute().item() == pytest.approx(scores[0].item(), rel=1e-12)


def test_prob_corr_needs_history():
    data = make_forecast()
    with pytest.raises(ValueError, match="past_target"):
        ProbCorr().update(data["samples"], data["target"])
    with pytest.raises(ValueError, match=r"past_target must be \[B, P, N\]"):
        ProbCorr().update(
            data["samples"], data["target"], past_target=torch.zeros(5, 6, 2, dtype=torch.float64)
        )
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert np.isnan(ProbCorr().compute().item())


def test_prob_corr_with_two_series_scores_their_one_pair():
    """N = 2: one pair, so the window score is the mean over samples of
    ``|corr(truth) - corr(sample)|`` of that pair (np.corrcoef), and the window is valid."""
    data = make_forecast(b=3, s=5, q=6, n=2, p=5, seed=7)
    scores, valid = prob_corr(data["samples"], data["target"], data["past_target"])
    assert valid.all()
    x, y, h = (data[k].numpy() for k in ("samples", "target", "past_target"))
    for w in range(3):
        ref = pearson_prob_corr(x[w : w + 1], y[w : w + 1], h[w : w + 1])
        assert scores[w].item() == pytest.approx(ref, rel=1e-9)


def test_prob_corr_history_mask_alone_equals_dropping_those_steps():
    """Only ``past_mask`` given (no horizon mask): the masked history steps are dropped."""
    data = make_forecast(b=2, s=4, q=5, n=3, p=6, seed=8)
    x, y, h = data["samples"], data["target"], data["past_target"]
    past_mask = torch.ones(2, 6, 3, dtype=torch.bool)
    past_mask[:, 2] = False
    scores, valid = prob_corr(x, y, h, past_mask=past_mask)
    expected, _ = prob_corr(x, y, h[:, [0, 1, 3, 4, 5]])
    assert valid.all()
    torch.testing.assert_close(scores, expected)


def test_a_pair_observed_together_at_one_horizon_step_counts():
    """Series 0 and 1 share exactly one observed horizon step: the pair is scored (valid
    window), with correlations over the steps each pair has in common."""
    data = make_forecast(b=1, s=4, q=4, n=2, p=5, seed=9)
    mask = torch.tensor([[[True, False], [True, True], [False, True], [False, True]]])
    scores, valid = prob_corr(data["samples"], data["target"], data["past_target"], mask=mask)
    assert valid.tolist() == [True] and scores.item() > 0


def test_prob_corr_of_no_windows_is_empty():
    data = make_forecast(b=2, s=3, q=4, n=3, p=4, seed=10)
    scores, valid = prob_corr(data["samples"][:0], data["target"][:0], data["past_target"][:0])
    assert scores.shape == (0,) and valid.shape == (0,) and valid.dtype == torch.bool
