"""gls_conditional_next / sample_conditional: argument checks, batch broadcasting, the per-matrix
fallbacks and their diagnostics (issue 19, surviving mutants of the first mutation run)."""

from __future__ import annotations

import pytest
import torch

from probforecast.distributions import (
    GLSConditional,
    gls_conditional_next,
    kernel_mixture_correlation,
    sample_conditional,
)
from probforecast.distributions._cholesky import (
    GLSCholeskyError,
    jitter_counts,
    reset_jitter_counts,
    reset_warning_state,
)

from .helpers import dense_sigma, random_params

F64 = torch.float64


def _corr(d):
    w = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    return kernel_mixture_correlation(w, torch.tensor([1.0, 2.5], dtype=F64), d)


def _args(d=3, b=2, r=2, seed=11):
    _, factor, diag, eta = random_params((), d, b, r, seed=seed)
    return {
        "eta_obs": eta[:-1],
        "factor_obs": factor[:-1],
        "diag_obs": diag[:-1],
        "factor_next": factor[-1],
        "diag_next": diag[-1],
        "corr": _corr(d),
    }


def _schur(args, observed=None):
    """Dense float64 conditional mean and covariance of the last step (Schur complement)."""
    factor = torch.cat([args["factor_obs"], args["factor_next"][None]])
    diag = torch.cat([args["diag_obs"], args["diag_next"][None]])
    sigma = dense_sigma(factor, diag, args["corr"])
    n = args["eta_obs"].numel()
    keep = torch.ones(n, dtype=torch.bool) if observed is None else observed.reshape(-1)
    s_oo, s_no = sigma[:n, :n][keep][:, keep], sigma[n:, :n][:, keep]
    mean = s_no @ torch.linalg.solve(s_oo, args["eta_obs"].reshape(-1)[keep])
    return mean, sigma[n:, n:] - s_no @ torch.linalg.solve(s_oo, s_no.T)


def _cov(cond):
    return cond.cov_factor @ cond.cov_factor.mT + torch.diag_embed(cond.cov_diag)


def test_no_history_counts_no_fallback():
    """``D = 1``: the unconditional distribution, with both counters exactly 0 (ints)."""
    args = _args(d=1)
    cond = gls_conditional_next(*args.values())
    assert cond.num_fallbacks == 0 and cond.num_unconditional == 0
    assert type(cond.num_unconditional) is int


def test_corr_with_two_batch_dims():
    """``D`` is read from the last dim of ``corr`` even with two leading batch dims whose sizes
    differ from ``D``; every batch element matches the dense Schur complement."""
    args = _args(d=3)
    corr = torch.stack([_corr(3), torch.eye(3, dtype=F64)]).reshape(1, 2, 3, 3)
    cond = gls_conditional_next(*(dict(args, corr=corr)).values())
    assert cond.loc.shape == (1, 2, 2)
    for i in range(2):
        mean, cov = _schur(dict(args, corr=corr[0, i]))
        torch.testing.assert_close(cond.loc[0, i], mean)
        torch.testing.assert_close(_cov(cond)[0, i], cov)


def test_a_size_one_batch_dim_of_corr_is_not_its_size():
    """``corr [2, 1, D, D]``: ``D`` is the last dim, so a size-1 second dim does not turn the
    conditional into the no-history (``D = 1``) unconditional one."""
    args = _args(d=3)
    corr = torch.stack([_corr(3), torch.eye(3, dtype=F64)]).reshape(2, 1, 3, 3)
    cond = gls_conditional_next(*(dict(args, corr=corr)).values())
    assert cond.loc.shape == (2, 1, 2)
    for i in range(2):
        mean, cov = _schur(dict(args, corr=corr[i, 0]))
        torch.testing.assert_close(cond.loc[i, 0], mean)
        torch.testing.assert_close(_cov(cond)[i, 0], cov)


def test_non_square_corr_is_rejected():
    """``corr [..., D, D+1]`` raises the ValueError (``D`` comes from the last dim)."""
    args = _args(d=3)
    corr = torch.zeros(4, 3, dtype=F64)
    corr[:3] = _corr(3)
    with pytest.raises(ValueError, match="gls_conditional_next expects"):
        gls_conditional_next(*(dict(args, corr=corr.T)).values())


@pytest.mark.parametrize(
    ("name", "bad"),
    [("corr", torch.ones(3, dtype=F64)), ("factor_next", torch.ones(2, dtype=F64))],
)
def test_too_few_dims_raise_the_message(name, bad):
    """A 1-D ``corr`` or ``factor_next`` (each alone) fails the dimension check with the one
    ValueError, not an IndexError or an unpacking error further down."""
    args = _args() | {name: bad}
    with pytest.raises(ValueError, match="gls_conditional_next expects"):
        gls_conditional_next(*args.values())


def test_float_mask_of_the_right_shape_is_rejected():
    """``mask_obs`` must be bool: a float mask of the right shape raises the ValueError."""
    args = _args()
    with pytest.raises(ValueError, match="gls_conditional_next expects.*mask_obs \\(2, 2\\)"):
        gls_conditional_next(*args.values(), mask_obs=torch.ones(2, 2))


def test_message_lists_the_received_shapes():
    """The ValueError lists every received shape (and the mask's when one is given)."""
    args = _args() | {"diag_next": torch.ones(3, dtype=F64)}
    mask = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError) as info:
        gls_conditional_next(*args.values(), mask_obs=mask)
    assert str(info.value).endswith(
        "got eta_obs (2, 2), factor_obs (2, 2, 2), diag_obs (2, 2), factor_next (2, 2), "
        "diag_next (3,), corr (3, 3), mask_obs (2, 2)"
    )
    with pytest.raises(ValueError) as info:  # no mask: the list ends with corr
        gls_conditional_next(*args.values())
    assert str(info.value).endswith("diag_next (3,), corr (3, 3)")


@pytest.mark.parametrize(
    "name", ["eta_obs", "factor_obs", "diag_obs", "factor_next", "diag_next", "corr", "mask_obs"]
)
def test_batch_carried_by_one_argument(name):
    """A batch dim carried only by ``name`` is the batch of the result: ``loc``, ``cov_factor``
    have it, and element ``i`` equals the dense Schur complement of the ``i``-th parameters."""
    args = _args(d=3, b=2, r=2)
    mask = torch.tensor([[True, False], [True, True]])
    second = {
        "eta_obs": -2 * args["eta_obs"],
        "factor_obs": 0.5 * args["factor_obs"],
        "diag_obs": 3 * args["diag_obs"],
        "factor_next": 2 * args["factor_next"],
        "diag_next": 0.5 * args["diag_next"],
        "corr": torch.eye(3, dtype=F64),
        "mask_obs": torch.ones_like(mask),
    }
    full = dict(args, mask_obs=mask)
    batched = dict(full)
    batched[name] = torch.stack([full[name], second[name]])
    mask_obs = batched.pop("mask_obs")
    cond = gls_conditional_next(*batched.values(), mask_obs=mask_obs)
    batched["mask_obs"] = mask_obs
    assert cond.loc.shape == (2, 2) and cond.cov_factor.shape == (2, 2, 2)
    for i in range(2):
        one = dict(full)
        one[name] = batched[name][i]
        observed = one.pop("mask_obs")
        mean, cov = _schur(one, observed)
        torch.testing.assert_close(cond.loc[i], mean)
        torch.testing.assert_close(_cov(cond)[i], cov.expand(2, 2), msg=f"element {i}")


@pytest.mark.parametrize("name", ["factor_obs", "diag_obs", "diag_next", "corr", "mask_obs"])
def test_batch_dims_that_do_not_broadcast_raise(name):
    """Leading dims of ``name`` (size 2) that do not broadcast with ``eta_obs``'s (size 3) raise
    the ValueError (with its message), not a RuntimeError."""
    args = dict(_args(), mask_obs=torch.ones(2, 2, dtype=torch.bool))
    args["eta_obs"] = args["eta_obs"].expand(3, 2, 2)
    args[name] = torch.stack([args[name]] * 2)
    mask_obs = args.pop("mask_obs")
    with pytest.raises(ValueError, match="gls_conditional_next expects"):
        gls_conditional_next(*args.values(), mask_obs=mask_obs)


def test_batched_mask_of_valid_shape_is_accepted():
    """A bool ``mask_obs [N, D-1, B]`` is valid (its event dims are its last two)."""
    args = _args()
    mask = torch.ones(4, 2, 2, dtype=torch.bool)
    cond = gls_conditional_next(*args.values(), mask_obs=mask)
    mean, _ = _schur(args)
    torch.testing.assert_close(cond.loc, mean.expand(4, 2))


def _failing(kind):
    """Arguments whose ``kind`` matrix (C_o, capacitance, V) alone needs a jitter or fails."""
    args = _args(d=3, b=2, r=2)
    if kind == "C_o jitter":  # C_o of rank one: a jitter recovers it
        args["corr"] = torch.ones(3, 3, dtype=F64)
    elif kind == "cap jitter":  # indefinite E^{-1}: Cap = diag(2, 0) for the one past step
        args = _args(d=2, b=2, r=2)
        args["factor_obs"] = torch.eye(2, dtype=F64)[None]
        args["diag_obs"] = torch.tensor([[1.0, -1.0]], dtype=F64)
        args["corr"] = torch.eye(2, dtype=F64)
    elif kind == "cap fails":  # non-finite capacitance: no jitter helps
        args["factor_obs"] = args["factor_obs"].clone()
        args["factor_obs"][0, 0, 0] = float("nan")
    elif kind == "V fails":  # the new step has zero variance and no correlation: V = 0
        corr = _corr(3).clone()
        corr[-1, :] = 0.0
        corr[:, -1] = 0.0
        args["corr"] = corr
    return args


@pytest.mark.parametrize(
    ("kind", "name", "fallbacks", "unconditional"),
    [
        ("C_o jitter", "conditional C_o", 1, 0),
        ("cap jitter", "conditional capacitance", 1, 0),
        ("cap fails", "conditional capacitance", 1, 1),
        ("V fails", "conditional latent covariance V", 1, 1),
    ],
)
def test_each_matrix_falls_back_on_its_own(kind, name, fallbacks, unconditional):
    """A jitter or failure of any one of the three factorisations is counted (never raised:
    a failed element gets the unconditional ``N(0, L L^T + diag d)``), and the jitter
    diagnostics (:func:`jitter_counts`) attribute it to that matrix's name."""
    reset_jitter_counts()
    reset_warning_state()
    args = _failing(kind)
    cond = gls_conditional_next(*args.values())
    assert (cond.num_fallbacks, cond.num_unconditional) == (fallbacks, unconditional)
    assert jitter_counts() == {name: 1}
    if unconditional:
        torch.testing.assert_close(cond.loc, torch.zeros(2, dtype=F64))
        f = args["factor_next"]
        torch.testing.assert_close(_cov(cond), f @ f.T + torch.diag(args["diag_next"]))
    reset_jitter_counts()


def test_conditional_keeps_float32_under_a_float64_default_dtype():
    """float32 inputs give float32 outputs even if torch's default dtype is float64 (the
    identity matrices are built in the inputs' dtype), and agree with the float64 result."""
    args = _args()
    ref = gls_conditional_next(*args.values())
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        cond = gls_conditional_next(*(v.float() for v in args.values()))
    finally:
        torch.set_default_dtype(old)
    assert cond.loc.dtype == torch.float32 and cond.cov_factor.dtype == torch.float32
    torch.testing.assert_close(cond.loc.double(), ref.loc, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batched", ["cov_factor", "cov_diag"])
def test_sample_noise_is_independent_across_a_batch_of_one_argument(batched):
    """``sample_conditional`` draws separate noise for every batch element, also when only
    ``cov_factor`` or only ``cov_diag`` carries the batch: two elements with identical
    parameters give uncorrelated draws (|sample corr| < 0.1 for N = 4000, i.e. > 6 sd of the
    null 1/sqrt(N) = 0.016)."""
    b, r = 3, 2
    loc = torch.zeros(b, dtype=F64)
    factor = torch.zeros(b, r, dtype=F64)
    factor[:, 0] = 1.0
    diag = torch.full((b,), 1e-2, dtype=F64)
    if batched == "cov_factor":
        factor = factor.expand(2, b, r)
    else:
        diag = diag.expand(2, b)
    cond = GLSConditional(loc, factor, diag)
    x = sample_conditional(cond, (4000,), generator=torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2, b)
    corr = torch.corrcoef(torch.stack([x[:, 0, 0], x[:, 1, 0]]))[0, 1]
    assert corr.abs() < 0.1


def test_failed_capacitance_does_not_raise():
    """A non-finite capacitance in the conditional never raises GLSCholeskyError."""
    args = _failing("cap fails")
    try:
        gls_conditional_next(*args.values())
    except GLSCholeskyError:  # pragma: no cover - the failure this test guards against
        pytest.fail("gls_conditional_next raised instead of falling back")
