"""The law the rolling GLS sampler draws its first horizon step from (paper Eq. 12), against a
dense float64 Gaussian conditional built from the model's own heads.

At the first horizon step the backbone state only reads the context, so the teacher-forced pass
gives it exactly. The joint law of the errors of the last ``D - 1`` context steps and of the new
step is ``N(0, Sigma)`` with ``Sigma[(i, n), (j, m)] = C[i, j] (L_i L_j^T)[n, m] + [i = j, n = m]
d_i[n]`` and ``C = C_{t+1}`` from the new step's state; the sampler must draw
``eta ~ N(Sigma_no Sigma_oo^{-1} eta_o, Sigma_nn - Sigma_no Sigma_oo^{-1} Sigma_on)`` over the
*observed* context errors ``eta_o = z - mu`` (a missing one is marginalised), and the sample is
``mu + eta``. The draws are recorded at the sampler's one noise entry point.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import probforecast.models.gls.path_noise as path_noise
from probforecast.models.noise import SampleNoise
from tests.models.gls_fixtures import BACKBONES, double_training_batch, small_gls_model

Q, N, S = 6, 4, 3


@pytest.fixture(scope="module")
def data():
    return double_training_batch(12, Q, N)


def build(kind, dm, **kwargs):
    return small_gls_model(kind, dm, seed=5, spread=True, **kwargs)


def record_draws(monkeypatch) -> list[tuple[torch.Tensor, ...]]:
    """``(loc, cov_factor, cov_diag, draw)`` of every ``PathNoise.lowrank`` call, in order."""
    calls = []
    real = path_noise.PathNoise.lowrank

    def recording(self, loc, factor, diag):
        out = real(self, loc, factor, diag)
        calls.append((loc, factor, diag, out))
        return out

    monkeypatch.setattr(path_noise.PathNoise, "lowrank", recording)
    return calls


def teacher_forced_heads(model, batch):
    """``mu, factor, diag`` at every position from ``max_lag`` on, and the hidden states."""
    seq = torch.cat([batch.past_target, batch.future_target], dim=1)
    observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)
    time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1)
    with torch.no_grad():
        inputs = model._inputs(seq, observed, time_feat, batch.series_ids, model.max_lag)
        hidden, _ = model._hidden(inputs)
        return (*model.head(hidden), hidden)


def dense_conditional(factor, diag, corr, eta, observed):
    """float64 ``N(mean, cov)`` of the last of ``D`` steps given the observed errors of the
    first ``D - 1``: ``factor [D, N, R]``, ``diag [D, N]``, ``corr [D, D]``, ``eta,
    observed [D - 1, N]``."""
    d, n, _ = factor.shape
    sigma = torch.zeros(d * n, d * n, dtype=torch.float64)
    for i in range(d):
        for j in range(d):
            block = corr[i, j] * factor[i] @ factor[j].T
            if i == j:
                block = block + torch.diag(diag[i])
            sigma[i * n : (i + 1) * n, j * n : (j + 1) * n] = block
    new = torch.arange((d - 1) * n, d * n)
    obs = torch.nonzero(observed.reshape(-1)).squeeze(-1)
    if obs.numel() == 0:
        return torch.zeros(n, dtype=torch.float64), sigma[new][:, new]
    gain = torch.linalg.solve(sigma[obs][:, obs], sigma[obs][:, new]).T  # Sigma_no Sigma_oo^-1
    mean = gain @ eta.reshape(-1)[obs]
    cov = sigma[new][:, new] - gain @ sigma[obs][:, new]
    return mean, cov


@pytest.mark.parametrize("kind", sorted(BACKBONES))
@pytest.mark.parametrize("horizon_d", [2, 3])
def test_first_step_is_drawn_from_the_dense_conditional(kind, horizon_d, data, monkeypatch):
    batch, dm = data
    batch = dataclasses.replace(batch, past_observed=batch.past_observed.clone())
    batch.past_observed[0, -1, 1] = False  # a missing context error: marginalised, not used as 0
    model = build(kind, dm, likelihood="gls", cross_correlation_horizon=horizon_d)
    calls = record_draws(monkeypatch)
    samples = model.sample(batch, S, SampleNoise.per_window(range(batch.batch_size)))
    assert len(calls) == Q
    loc, cov_factor, cov_diag, draw = calls[0]  # rows (s b), sample-major

    mu, factor, diag, hidden = teacher_forced_heads(model, batch)
    p = batch.past_target.shape[1] - model.max_lag  # first horizon position in ``hidden``
    corr = model.correlation(hidden[:, p])  # C_{t+1} from the first horizon step's state
    steps = slice(p - (horizon_d - 1), p + 1)  # last D - 1 context steps and the new one
    eta = (batch.past_target[:, -(horizon_d - 1) :] - mu[:, p - (horizon_d - 1) : p]).double()
    observed = batch.past_observed[:, -(horizon_d - 1) :]
    for b in range(batch.batch_size):
        mean, cov = dense_conditional(
            factor[b, steps], diag[b, steps], corr[b], eta[b], observed[b]
        )
        assert mean.abs().max() > 1e-2, "the test needs a visibly non-zero conditional mean"
        for s in range(S):
            r = s * batch.batch_size + b
            torch.testing.assert_close(loc[r], mean, rtol=1e-8, atol=1e-10)
            law = cov_factor[r] @ cov_factor[r].T + torch.diag(cov_diag[r])
            torch.testing.assert_close(law, cov, rtol=1e-8, atol=1e-10)
            # the path's value is the step's mean plus the drawn error
            torch.testing.assert_close(samples[b, s, 0], mu[b, p] + draw[r], rtol=0, atol=1e-12)
    assert samples.dtype == torch.float64


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_gls_with_d_one_samples_like_independent_errors(kind, data, monkeypatch):
    """D = 1: no error history to condition on, every step's error is the unconditional
    ``N(0, L L^T + diag d)``; the paths equal those of ``likelihood: independent`` (same weights,
    same noise)."""
    batch, dm = data
    gls = build(kind, dm, likelihood="gls", cross_correlation_horizon=1)
    independent = build(kind, dm, likelihood="independent")
    independent.load_state_dict(
        {k: v for k, v in gls.state_dict().items() if not k.startswith("correlation.")}
    )
    calls = record_draws(monkeypatch)
    seeds = range(batch.batch_size)
    paths = gls.sample(batch, S, SampleNoise.per_window(seeds))
    loc, cov_factor, cov_diag, draw = calls[0]
    _, factor, diag, _ = teacher_forced_heads(gls, batch)
    p = batch.past_target.shape[1] - gls.max_lag
    for b in range(batch.batch_size):
        cov = factor[b, p] @ factor[b, p].T + torch.diag(diag[b, p])
        for s in range(S):
            r = s * batch.batch_size + b
            assert torch.equal(loc[r], torch.zeros(N, dtype=torch.float64))
            law = cov_factor[r] @ cov_factor[r].T + torch.diag(cov_diag[r])
            torch.testing.assert_close(law, cov, rtol=1e-10, atol=1e-12)
    expected = independent.sample(batch, S, SampleNoise.per_window(seeds))
    torch.testing.assert_close(paths, expected, rtol=0, atol=0)
    assert gls.sampling_diagnostics() == {"gls_conditional_fallbacks": 0.0}


@pytest.fixture(scope="module")
def short_context():
    """Context 5 with lags [1, 2]: P = 3 unrolled steps, fewer than Q - 1 = 5 (allowed without
    GLS, which has no residual buffer to seed)."""
    return double_training_batch(5, Q, N)


@pytest.mark.parametrize("context", ["data", "short_context"])
def test_independent_paths_add_the_drawn_error_to_the_mean(context, request, monkeypatch):
    batch, dm = request.getfixturevalue(context)
    model = build("gpvar", dm, likelihood="independent")
    assert context == "data" or model.unrolled_context < model.horizon_d - 1
    calls = record_draws(monkeypatch)
    samples = model.sample(batch, S, SampleNoise.per_window(range(batch.batch_size)))
    mu, _, _, _ = teacher_forced_heads(model, batch)
    p = batch.past_target.shape[1] - model.max_lag
    draw = calls[0][3]
    for b in range(batch.batch_size):
        for s in range(S):
            r = s * batch.batch_size + b
            torch.testing.assert_close(samples[b, s, 0], mu[b, p] + draw[r], rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_ar_correlation_samples_equal_the_dense_conditional(kind, order, data, monkeypatch):
    """``correlation: ar`` conditions through the block-banded path; with the same noise its
    paths equal those of the dense conditional on the same exact ``C_AR``, at every step."""
    batch, dm = data
    model = small_gls_model(
        kind, dm, seed=5, spread=False, likelihood="gls", correlation="ar", ar_order=order,
        cross_correlation_horizon=3,
    )  # fmt: skip
    with torch.no_grad():
        model.correlation.ar_head.proj.bias.copy_(torch.tensor([1.1, -0.3][:order]))
    seeds = list(range(11, 11 + batch.batch_size))
    banded = model.sample(batch, S, noise=SampleNoise.per_window(seeds))
    structured = model.correlation.forward
    monkeypatch.setattr(model.correlation, "forward", lambda hidden: structured(hidden).dense())
    dense = model.sample(batch, S, noise=SampleNoise.per_window(seeds))
    assert banded.shape == (batch.batch_size, S, Q, N)
    torch.testing.assert_close(banded, dense, rtol=1e-9, atol=1e-9)
