"""gls_conditional_next (paper Eq. 12, latent-space form) against the dense Schur complement."""

from __future__ import annotations

import logging

import pytest
import torch

from probforecast.distributions import (
    GLSConditional,
    gls_conditional_next,
    kernel_mixture_correlation,
    sample_conditional,
)
from probforecast.distributions._cholesky import reset_warning_state

from .helpers import conditional_split, dense_sigma, random_params

F64 = torch.float64


def _corr(d, weights=(0.5, 0.3, 0.2), batch=()):
    w = torch.tensor(weights, dtype=F64).expand(*batch, len(weights))
    return kernel_mixture_correlation(w, torch.tensor([1.0, 2.5], dtype=F64), d)


def _dense_conditional(factor, diag, corr, eta_obs, observed=None):
    """Schur complement of the dense window covariance (time-major), optionally on observed history only."""
    d, b, _ = factor.shape
    sigma = dense_sigma(factor, diag, corr)
    n_obs = (d - 1) * b
    keep = torch.ones(n_obs, dtype=torch.bool) if observed is None else observed.reshape(-1)
    s_obs = sigma[:n_obs, :n_obs][keep][:, keep]
    s_star = sigma[n_obs:, :n_obs][:, keep]
    s_next = sigma[n_obs:, n_obs:]
    mean = s_star @ torch.linalg.solve(s_obs, eta_obs.reshape(-1)[keep])
    cov = s_next - s_star @ torch.linalg.solve(s_obs, s_star.T)
    return mean, cov


def _cov(cond: GLSConditional):
    return cond.cov_factor @ cond.cov_factor.mT + torch.diag_embed(cond.cov_diag)


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("b", [1, 4])
@pytest.mark.parametrize("r", [1, 3])
def test_matches_dense_schur_complement(d, b, r):
    batch = (2,)
    eta_obs, f_obs, d_obs, f_next, d_next, factor, diag = conditional_split(
        d, b, r, batch, seed=10 * d + b + r
    )
    corr = torch.stack([_corr(d), _corr(d, (0.1, 0.85, 0.05))])
    cond = gls_conditional_next(eta_obs, f_obs, d_obs, f_next, d_next, corr)
    assert (
        cond.loc.shape == (2, b) and cond.cov_factor.shape == (2, b, r) and cond.num_fallbacks == 0
    )
    for i in range(2):
        mean, cov = _dense_conditional(factor[i], diag[i], corr[i], eta_obs[i])
        torch.testing.assert_close(cond.loc[i], mean, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(_cov(cond)[i], cov, rtol=1e-8, atol=1e-8)
        marginal = factor[i, -1] @ factor[i, -1].T + torch.diag(diag[i, -1])
        assert (
            torch.linalg.eigvalsh(marginal - cov).min() > -1e-10
        )  # conditioning never adds variance


def test_identity_corr_gives_the_marginal():
    d, b, r = 4, 3, 2
    eta_obs, f_obs, d_obs, f_next, d_next, _, _ = conditional_split(d, b, r, (), seed=1)
    cond = gls_conditional_next(eta_obs, f_obs, d_obs, f_next, d_next, torch.eye(d, dtype=F64))
    torch.testing.assert_close(cond.loc, torch.zeros(b, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(
        _cov(cond), f_next @ f_next.T + torch.diag(d_next), rtol=1e-12, atol=1e-12
    )


def test_no_history_d_equals_one():
    _, factor, diag, _ = random_params((3,), 1, 4, 2, seed=2)
    eta_obs = torch.zeros(3, 0, 4, dtype=F64)
    cond = gls_conditional_next(
        eta_obs, factor[:, :0], diag[:, :0], factor[:, 0], diag[:, 0], torch.ones(1, 1, dtype=F64)
    )
    assert torch.equal(cond.loc, torch.zeros(3, 4, dtype=F64)) and cond.num_fallbacks == 0
    torch.testing.assert_close(
        _cov(cond), factor[:, 0] @ factor[:, 0].mT + torch.diag_embed(diag[:, 0])
    )


def test_missing_history_is_marginalised():
    d, b, r = 4, 3, 2
    eta_obs, f_obs, d_obs, f_next, d_next, factor, diag = conditional_split(d, b, r, (), seed=3)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, False]])
    garbage = torch.where(mask, eta_obs, torch.full_like(eta_obs, float("nan")))
    corr = _corr(d)
    cond = gls_conditional_next(garbage, f_obs, d_obs, f_next, d_next, corr, mask_obs=mask)
    mean, cov = _dense_conditional(factor, diag, corr, eta_obs, observed=mask)
    torch.testing.assert_close(cond.loc, mean, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(_cov(cond), cov, rtol=1e-8, atol=1e-8)


def test_sequential_sampling_reproduces_joint_covariance():
    """Chain rule: eta_0, eta_1 | eta_0, ... drawn with the conditional have covariance Sigma^bat."""
    d, b, r, paths = 4, 2, 2, 100_000
    _, factor, diag, _ = random_params((), d, b, r, seed=4)
    corr = _corr(d, (0.6, 0.3, 0.1))  # Toeplitz, so every leading block is the shorter window's C
    gen = torch.Generator().manual_seed(0)
    etas = []
    for q in range(d):
        history = torch.stack(etas, dim=-2) if etas else torch.zeros(paths, 0, b, dtype=F64)
        cond = gls_conditional_next(
            history, factor[:q], diag[:q], factor[q], diag[q], corr[: q + 1, : q + 1]
        )
        assert cond.num_fallbacks == 0
        etas.append(sample_conditional(cond, generator=gen))
    draws = torch.stack(etas, dim=-2).flatten(-2)  # [paths, D B] time-major
    assert draws.shape == (paths, d * b)
    empirical = draws.T @ draws / paths
    sigma = dense_sigma(factor, diag, corr)
    assert (empirical - sigma).abs().max() < 0.03 * sigma.diagonal().max()


def test_sample_shapes_and_generator():
    eta_obs, f_obs, d_obs, f_next, d_next, _, _ = conditional_split(3, 5, 2, (4,), seed=5)
    cond = gls_conditional_next(eta_obs, f_obs, d_obs, f_next, d_next, _corr(3))
    assert cond.rsample().shape == (4, 5)
    a = cond.rsample((6,), generator=torch.Generator().manual_seed(1))
    b = sample_conditional(cond, (6,), generator=torch.Generator().manual_seed(1))
    assert a.shape == (6, 4, 5) and torch.equal(a, b)


def test_fallback_jitter_and_unconditional_are_counted_and_logged(caplog):
    reset_warning_state()
    d, b, r = 3, 4, 2
    eta_obs, f_obs, d_obs, f_next, d_next, _, _ = conditional_split(d, b, r, (3,), seed=6)
    healthy = _corr(d)
    singular = torch.ones(d, d, dtype=F64)  # C_o rank one: needs jitter
    indefinite = torch.tensor(
        [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64
    )  # C_o has eigenvalue -1
    corr = torch.stack([healthy, singular, indefinite])
    with caplog.at_level(logging.WARNING, logger="probforecast.distributions"):
        cond = gls_conditional_next(eta_obs, f_obs, d_obs, f_next, d_next, corr)
    assert cond.num_fallbacks == 2 and cond.num_unconditional == 1
    assert "jitter" in caplog.text
    assert (
        "gls_conditional_next: 1 of 3 batch elements fell back to the unconditional "
        "distribution N(0, L L^T + diag d)"
    ) in caplog.messages
    for t in (cond.loc, cond.cov_factor, cond.cov_diag, cond.rsample((10,))):
        assert torch.isfinite(t).all()
    # element 2 is exactly the unconditional N(0, L L^T + diag d); element 0 is untouched
    torch.testing.assert_close(cond.loc[2], torch.zeros(b, dtype=F64))
    torch.testing.assert_close(_cov(cond)[2], f_next[2] @ f_next[2].T + torch.diag(d_next[2]))
    ref = gls_conditional_next(eta_obs[0], f_obs[0], d_obs[0], f_next[0], d_next[0], healthy)
    torch.testing.assert_close(cond.loc[0], ref.loc)


def test_shape_errors():
    eta_obs, f_obs, d_obs, f_next, d_next, _, _ = conditional_split(3, 2, 2, (), seed=7)
    with pytest.raises(ValueError, match=r"eta_obs \[\.\.\., D-1, B\]"):
        gls_conditional_next(eta_obs, f_obs, d_obs, f_next, d_next, _corr(4))
    with pytest.raises(ValueError, match="factor_next"):
        gls_conditional_next(eta_obs, f_obs, d_obs, f_next[:, :1], d_next, _corr(3))


def _args(d=3, b=2, r=2):
    eta_obs, f_obs, d_obs, f_next, d_next, _, _ = conditional_split(d, b, r, (), seed=11)
    return {
        "eta_obs": eta_obs,
        "factor_obs": f_obs,
        "diag_obs": d_obs,
        "factor_next": f_next,
        "diag_next": d_next,
        "corr": _corr(d),
    }


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("factor_next", torch.zeros(2)),
        ("factor_obs", torch.zeros(2, 2)),
        ("corr", torch.zeros(3)),
        ("eta_obs", torch.zeros(2)),
        ("corr", torch.eye(3, dtype=F64)[:, :2]),
        ("diag_next", torch.ones(3, dtype=F64)),
        ("factor_obs", torch.zeros(2, 2, 3, dtype=F64)),
        ("eta_obs", torch.zeros(3, 2, dtype=F64)),
        ("diag_obs", torch.ones(2, 3, dtype=F64)),
        ("mask_obs", torch.ones(2, 3, dtype=torch.bool)),
        ("mask_obs", torch.ones(2, 2)),
    ],
)
def test_each_bad_argument_gets_the_one_message(name, bad):
    args = _args() | {name: bad}
    mask = args.pop("mask_obs", None)
    shape = tuple(bad.shape)
    with pytest.raises(ValueError) as info:
        gls_conditional_next(*args.values(), mask_obs=mask)
    message = str(info.value)
    assert message.startswith(
        "gls_conditional_next expects eta_obs [..., D-1, B], factor_obs [..., D-1, B, R], "
        "diag_obs [..., D-1, B], factor_next [..., B, R], diag_next [..., B], corr [..., D, D] "
        "and an optional bool mask_obs [..., D-1, B]; got eta_obs "
    )
    assert f"{name} {shape}" in message
    if name != "mask_obs":
        assert "mask_obs (" not in message


def test_batches_that_do_not_broadcast_get_the_message():
    args = _args() | {"eta_obs": torch.zeros(4, 2, 2, dtype=F64)}
    args["diag_next"] = torch.ones(3, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"expects eta_obs .* got eta_obs \(4, 2, 2\)"):
        gls_conditional_next(*args.values())


def test_broadcast_batches_and_a_valid_mask_pass():
    args = _args()
    batched = {k: v.expand(4, *v.shape) for k, v in args.items()}
    mask = torch.ones(4, 2, 2, dtype=torch.bool)
    cond = gls_conditional_next(*batched.values(), mask_obs=mask)
    single = gls_conditional_next(*args.values())
    torch.testing.assert_close(cond.loc, single.loc.expand(4, -1))
    assert cond.cov_factor.shape == (4, 2, 2) and cond.cov_diag.shape == (4, 2)
