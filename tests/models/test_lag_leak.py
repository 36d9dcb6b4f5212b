"""``future_lag_leak``: replaying the official predictors' true horizon values in lagged inputs.

The rules are checked on the sampler's output: with the same noise, a sample path can only
change where the rule lets a changed horizon value into an input (and at the steps after it,
through the backbone's state)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from probforecast.models.gls.copula import EmpiricalCopula
from probforecast.models.gls.lag_leak import leak_source, leaked_lags, replay_lag_leak
from tests.models.gls_fixtures import double_training_batch, small_gls_model

LAGS = [1, 3, 5]
Q = 8


@pytest.fixture(scope="module")
def data():
    return double_training_batch(context_length=20, prediction_length=Q, num_series=3)


def build(kind, dm, **kwargs):
    return small_gls_model(kind, dm, seed=0, spread=True, lags=LAGS, **kwargs)


def draw(model, batch, samples: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return model.sample(batch, samples)  # [B, S, Q, N]


def with_truth_changed(batch, index: int):
    future = batch.future_target.clone()
    future[:, index] += 5.0
    return replace(batch, future_target=future)


def first_changed_step(a: torch.Tensor, b: torch.Tensor) -> int | None:
    """The first horizon step at which two sample arrays differ, or None."""
    differs = (a - b).abs().amax(dim=(0, 1, 3)) > 0
    return int(differs.nonzero()[0]) if bool(differs.any()) else None


def test_rules_name_the_leaked_columns_and_never_lag_one():
    at_lag = {h: leaked_lags("at_lag", LAGS, h) for h in range(Q)}
    assert at_lag == {0: [], 1: [], 2: [], 3: [(1, 0)], 4: [], 5: [(2, 0)], 6: [], 7: []}
    horizon = {h: leaked_lags("horizon", LAGS, h) for h in range(Q)}
    assert horizon[2] == [] and horizon[3] == [(1, 0)] and horizon[4] == [(1, 1)]
    assert horizon[5] == [(1, 2), (2, 0)] and horizon[7] == [(1, 4), (2, 2)]
    assert all(leaked_lags("none", LAGS, h) == [] for h in range(Q))
    # lag 2 is the smallest lag that leaks; lag 1 never does
    assert leaked_lags("at_lag", [1, 2], 2) == [(1, 0)]
    assert leaked_lags("horizon", [1, 2], 1) == [] and leaked_lags("horizon", [2], 3) == [(0, 1)]


def test_replay_writes_observed_truth_into_every_path_and_keeps_the_rest():
    paths, batch, n, features = 3, 2, 4, 6
    inputs = torch.randn(paths * batch, 1, n, features)
    truth = torch.randn(batch, Q, n)
    observed = torch.ones(batch, Q, n, dtype=torch.bool)
    observed[1, 2, 3] = False
    out = replay_lag_leak(inputs, truth, observed, [(1, 2), (2, 0)])
    for s in range(paths):
        for b in range(batch):
            row = s * batch + b  # paths are ordered (s b)
            expected = inputs[row, 0].clone()
            expected[:, 1] = truth[b, 2]
            expected[:, 2] = truth[b, 0]
            if b == 1:
                expected[3, 1] = inputs[row, 0, 3, 1]  # unobserved truth: the path's value stays
            assert torch.equal(out[row, 0], expected)
    assert replay_lag_leak(inputs, truth, observed, []) is inputs


@pytest.mark.parametrize("kind", ["gpvar", "transformer"])
@pytest.mark.parametrize("likelihood", ["independent", "gls"])
def test_samples_see_exactly_the_leaked_truths(data, kind, likelihood):
    batch, dm = data
    clean = build(kind, dm, likelihood=likelihood)
    at_lag = build(kind, dm, likelihood=likelihood, future_lag_leak="at_lag")
    horizon = build(kind, dm, likelihood=likelihood, future_lag_leak="horizon")
    base = {name: draw(m, batch) for name, m in (("none", clean), ("at", at_lag), ("hz", horizon))}
    # the leak changes the inputs only where the rule says so; y_{t0} enters at step min(L > 1)
    assert first_changed_step(base["none"], base["at"]) == 3
    assert first_changed_step(base["none"], base["hz"]) == 3
    # a changed y_{t0}: seen from step 3 (lag 3) by both rules, never without a leak
    moved0 = with_truth_changed(batch, 0)
    assert first_changed_step(base["none"], draw(clean, moved0)) is None
    assert first_changed_step(base["at"], draw(at_lag, moved0)) == 3
    assert first_changed_step(base["hz"], draw(horizon, moved0)) == 3
    # a changed y_{t0+1}: never seen by at_lag; seen from step 1 + 3 by horizon
    moved1 = with_truth_changed(batch, 1)
    assert first_changed_step(base["at"], draw(at_lag, moved1)) is None
    assert first_changed_step(base["hz"], draw(horizon, moved1)) == 4


def test_sample_groups_keep_the_leak(data):
    batch, dm = data
    joint = build("gpvar", dm, likelihood="independent", future_lag_leak="at_lag")
    grouped = build("gpvar", dm, likelihood="independent", future_lag_leak="at_lag",
                    sample_group_size=1)  # fmt: skip
    moved0 = with_truth_changed(batch, 0)
    for model in (joint, grouped):
        assert first_changed_step(draw(model, batch), draw(model, moved0)) == 3


def test_bad_mode_and_an_unobserved_horizon_raise(data):
    batch, dm = data
    with pytest.raises(
        ValueError,
        match=r"future_lag_leak must be one of \['none', 'at_lag', 'horizon'\]; got 'pf'",
    ):
        build("gpvar", dm, future_lag_leak="pf")
    unknown = replace(batch, future_observed=torch.zeros_like(batch.future_observed))
    model = build("gpvar", dm, likelihood="independent", future_lag_leak="horizon")
    with pytest.raises(ValueError, match="this batch has no observed horizon"):
        draw(model, unknown)
    draw(build("gpvar", dm, likelihood="independent"), unknown)  # the clean sampler needs no truth


def test_leak_source_is_the_horizon_in_the_models_space(data):
    batch, _ = data
    copula = EmpiricalCopula.fit(batch.past_target, batch.past_observed)
    assert leak_source("none", batch, copula) is None
    truth, seen = leak_source("at_lag", batch, None)
    assert truth is batch.future_target and seen is batch.future_observed
    scores, seen = leak_source("horizon", batch, copula)
    torch.testing.assert_close(scores, copula.to_gaussian(batch.future_target))
    assert not torch.allclose(scores, batch.future_target)
    assert seen is batch.future_observed


def test_copula_models_are_leaked_the_truth_as_gaussian_scores(data, monkeypatch):
    """With ``marginal: copula`` the model works on ``Phi^{-1}(F~(z))``: the replayed truth
    must be the horizon in that space, not the raw values."""
    import probforecast.models.gls.lowrank_ar as lowrank_ar

    batch, dm = data
    seen = []
    real = lowrank_ar.replay_lag_leak

    def recording(inputs, truth, observed, columns):
        seen.append(truth)
        return real(inputs, truth, observed, columns)

    monkeypatch.setattr(lowrank_ar, "replay_lag_leak", recording)
    model = build(
        "gpvar", dm, likelihood="independent", marginal="copula", future_lag_leak="at_lag"
    )
    draw(model, batch)
    copula = EmpiricalCopula.fit(batch.past_target, batch.past_observed)
    assert seen
    for truth in seen:
        torch.testing.assert_close(truth, copula.to_gaussian(batch.future_target))
