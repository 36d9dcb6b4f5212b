"""``sample_group_size``: the official GLS code's test-time groups of series, drawn independently."""

from __future__ import annotations

import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GPVar, TransformerForecaster

S = 20_000


@pytest.fixture(scope="module")
def batch():
    dm = ForecastDataModule(
        "synthetic",
        context_length=12,
        prediction_length=4,
        batch_size=2,
        synthetic=SyntheticOptions(num_series=5, length=200, num_test_windows=2),
    )
    dm.setup("test")
    return next(iter(dm.test_dataloader())), dm


def build(cls, dm, **kwargs):
    torch.manual_seed(0)
    model = cls(
        dm.target_dim,
        dm.context_length,
        dm.prediction_length,
        dm.freq,
        dm.num_time_features,
        hidden_size=8,
        rank=3,
        lags=[1, 2],
        dropout=0.0,
        **kwargs,
    )
    with torch.no_grad():  # a strong common factor, so cross-series covariance is visible
        model.head.proj.bias[2:] = 2.0
    return model.eval()


def first_step_covariance(model, batch) -> torch.Tensor:
    """``F F^T + diag(d)`` of the first horizon step of window 0, from the model's own heads
    (the teacher-forced state at that step only reads the context)."""
    seq = torch.cat([batch.past_target, batch.future_target], dim=1)
    observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)
    time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1)
    with torch.no_grad():
        inputs = model._inputs(seq, observed, time_feat, batch.series_ids, model.max_lag)
        hidden, _ = model._hidden(inputs)
        first = batch.past_target.shape[1] - model.max_lag
        _, factor, diag = model.head(hidden[0, first])
    return (factor @ factor.T + torch.diag(diag)).double()


def empirical_first_step_covariance(model, batch) -> torch.Tensor:
    torch.manual_seed(1)
    draws = model.sample(batch, S)[0, :, 0].double()  # [S, N]
    return torch.cov(draws.T)


def test_groups_keep_each_block_and_zero_the_cross_group_covariance(batch):
    """Monte-Carlo against the closed form (the grouping lives in the base class that GPVar and
    the Transformer share; the Transformer's 20,000-path attention is too slow for a unit test)."""
    batch, dm = batch
    joint = build(GPVar, dm, likelihood="independent")
    grouped = build(GPVar, dm, likelihood="independent", sample_group_size=2)
    expected = first_step_covariance(joint, batch)
    blocks = torch.block_diag(expected[:2, :2], expected[2:4, 2:4], expected[4:, 4:])
    var = torch.diagonal(expected)
    tolerance = 6 * torch.sqrt((var[:, None] * var[None, :] + expected**2) / S)
    assert (expected - blocks).abs().max() > 5 * tolerance.max(), "cross terms must be visible"
    for model, target in ((joint, expected), (grouped, blocks)):
        error = (empirical_first_step_covariance(model, batch) - target).abs()
        assert (error <= tolerance).all(), (error / tolerance).max()


def test_gls_groups_are_independent_of_each_other(batch):
    batch, dm = batch
    model = build(GPVar, dm, likelihood="gls", sample_group_size=3)
    torch.manual_seed(2)
    draws = model.sample(batch, S)[0].double()  # [S, Q, N]
    flat = draws.permute(0, 2, 1)  # [S, N, Q]
    across = torch.cov(torch.cat([flat[:, :3].reshape(S, -1), flat[:, 3:].reshape(S, -1)], 1).T)
    std = torch.sqrt(torch.diagonal(across))
    corr = across / (std[:, None] * std[None, :])
    cross = corr[: 3 * 4, 3 * 4 :]
    within = corr[: 3 * 4, : 3 * 4] - torch.eye(12, dtype=corr.dtype)
    assert cross.abs().max() < 6 / S**0.5
    assert within.abs().max() > 0.2  # the groups themselves stay correlated (time and series)


@pytest.mark.parametrize("cls", [GPVar, TransformerForecaster])
def test_a_group_size_at_least_n_is_the_joint_draw(cls, batch):
    batch, dm = batch
    joint, wide = build(cls, dm), build(cls, dm, sample_group_size=5)
    torch.manual_seed(3)
    a = joint.sample(batch, 7)
    torch.manual_seed(3)
    torch.testing.assert_close(wide.sample(batch, 7), a)


def test_group_size_must_be_positive(batch):
    _, dm = batch
    with pytest.raises(ValueError, match="sample_group_size must be >= 1"):
        build(GPVar, dm, sample_group_size=0)


def test_select_series_slices_every_series_field(batch):
    batch, _ = batch
    sub = batch.select_series(torch.tensor([4, 1]))
    assert sub.past_target.shape[-1] == 2 and sub.num_series == 2
    torch.testing.assert_close(sub.future_target, batch.future_target[..., [4, 1]])
    torch.testing.assert_close(sub.loc, batch.loc[:, [4, 1]])
    torch.testing.assert_close(sub.series_ids, batch.series_ids[:, [4, 1]])
    assert sub.past_time_feat is batch.past_time_feat and sub.window_start is batch.window_start
