"""The GLS building blocks of ``_gls_ops`` against dense float64 references (issue 19).

``gls_mahalanobis`` / ``gls_logdet`` are checked with several leading batch dims, so that a
reduction over a wrong axis (``+2`` for ``-2``, ``None``) changes the result or its shape.
"""

from __future__ import annotations

import pytest
import torch

from probforecast.distributions import GLSMultivariateNormal, gls_covariance_matrix, gls_log_prob
from probforecast.distributions._gls_ops import (
    check_gls_args,
    gls_logdet,
    gls_mahalanobis,
    latent_capacitance,
    latent_projection,
    masked_precision,
)

from .helpers import dense_sigma, random_params

F64 = torch.float64


def _corr(d, batch=(), seed=0):
    """Random SPD correlation-like matrices ``[*batch, D, D]`` (unit diagonal)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, d, 2 * d, generator=gen, dtype=F64)
    cov = x @ x.mT / (2 * d) + 0.1 * torch.eye(d, dtype=F64)
    s = cov.diagonal(dim1=-2, dim2=-1).rsqrt()
    return cov * s[..., :, None] * s[..., None, :]


def _woodbury_inputs(batch, d, b, r, seed):
    """``prec, eta, L_cap, u`` of the Woodbury form and the dense ``Sigma`` and ``eta``."""
    _, factor, diag, eta = random_params(batch, d, b, r, seed=seed)
    corr = _corr(d, batch, seed=seed + 1)
    prec, _ = masked_precision(diag, None)
    cap = latent_capacitance(factor, prec, torch.linalg.inv(corr))
    cap_tril = torch.linalg.cholesky(cap)
    u = latent_projection(factor, prec, eta)
    return prec, eta, cap_tril, u, dense_sigma(factor, diag, corr), factor, diag, corr


def test_gls_mahalanobis_matches_dense_quadratic_form():
    """``gls_mahalanobis`` (Woodbury) equals ``r^T Sigma^{-1} r`` from a dense float64 solve of the
    low-rank + Kronecker covariance, element by element over three leading batch dims."""
    batch, d, b, r = (2, 3, 4), 3, 5, 2
    prec, eta, cap_tril, u, sigma, *_ = _woodbury_inputs(batch, d, b, r, seed=3)
    flat = eta.flatten(-2)
    expected = (flat.unsqueeze(-2) @ torch.linalg.solve(sigma, flat.unsqueeze(-1)))[..., 0, 0]
    got = gls_mahalanobis(prec, eta, cap_tril, u)
    assert got.shape == batch
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    # the Woodbury correction is a real (positive) reduction of the diagonal-only term
    assert ((prec * eta.square()).sum((-2, -1)) - got > 1e-3).all()


def test_gls_logdet_matches_dense_slogdet():
    """Matrix determinant lemma: ``gls_logdet`` equals ``log|Sigma|`` of the dense covariance,
    with two leading batch dims (a sum over the wrong axis changes it)."""
    batch, d, b, r = (2, 3), 3, 4, 2
    _, _, cap_tril, _, sigma, _, diag, corr = _woodbury_inputs(batch, d, b, r, seed=5)
    got = gls_logdet(cap_tril, torch.linalg.cholesky(corr), diag.log(), r)
    assert got.shape == batch
    torch.testing.assert_close(got, torch.linalg.slogdet(sigma)[1], rtol=1e-10, atol=1e-10)


def test_gls_covariance_matrix_matches_block_diagonal_kronecker_form():
    """``gls_covariance_matrix`` equals ``blkdiag(L) (C ⊗ I_R) blkdiag(L)^T + diag(d)`` (built with
    torch.block_diag / torch.kron) and keeps the input dtype (float32 under a float64 default dtype)."""
    _, factor, diag, _ = random_params((2,), 3, 4, 2, seed=9)
    corr = _corr(3, (2,), seed=4)
    got = gls_covariance_matrix(factor, diag, corr)
    torch.testing.assert_close(got, dense_sigma(factor, diag, corr), rtol=1e-12, atol=1e-12)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the identities must follow the inputs, not this
    try:
        low = gls_covariance_matrix(factor.float(), diag.float(), corr.float())
    finally:
        torch.set_default_dtype(old)
    assert low.dtype == torch.float32


def _valid(batch=(), d=3, b=2, r=2):
    loc, factor, diag, value = random_params(batch, d, b, r, seed=1)
    return {"loc": loc, "cov_factor": factor, "cov_diag": diag, "corr": _corr(d), "value": value}


def test_check_gls_args_message_lists_every_received_shape():
    """A bad shape raises one ValueError naming the caller (``where``, default ``gls_log_prob``),
    the expected layout and every received tensor as ``name (shape)``, comma separated."""
    args = _valid()
    args["loc"] = torch.zeros(3, 5, dtype=F64)
    mask = torch.ones(3, 2, dtype=torch.bool)
    with pytest.raises(ValueError) as info:
        check_gls_args(
            args["loc"], args["cov_factor"], args["cov_diag"], args["corr"], args["value"], mask
        )
    message = str(info.value)
    assert message.startswith(
        "gls_log_prob expects value, loc [..., D, B], cov_factor [..., D, B, R], cov_diag "
        "[..., D, B], corr [..., D, D] and an optional bool mask [..., D, B], with broadcastable "
        "leading dims; got loc (3, 5), "
    )
    assert message.endswith(
        "got loc (3, 5), cov_factor (3, 2, 2), cov_diag (3, 2), corr (3, 3), value (3, 2), "
        "mask (3, 2)"
    )


def test_integer_inputs_are_refused_with_the_floating_point_message():
    """An integer ``value`` or ``corr`` of valid shape raises the ValueError that names the caller,
    says what must be floating point and lists the received shapes."""
    args = _valid()
    for name in ("value", "corr"):
        bad = dict(args, **{name: args[name].round().long()})
        with pytest.raises(ValueError) as info:
            check_gls_args(
                bad["loc"], bad["cov_factor"], bad["cov_diag"], bad["corr"], bad["value"]
            )
        assert str(info.value) == (
            "gls_log_prob: value, loc, cov_factor, cov_diag and corr must be floating point; got "
            "loc (3, 2), cov_factor (3, 2, 2), cov_diag (3, 2), corr (3, 3), value (3, 2)"
        )


def test_gls_multivariate_normal_errors_name_the_class():
    """GLSMultivariateNormal's shape errors start with its own name, not ``gls_log_prob``."""
    args = _valid()
    with pytest.raises(ValueError) as info:
        GLSMultivariateNormal(args["loc"], args["cov_factor"], args["cov_diag"], args["corr"][:2])
    assert str(info.value).startswith("GLSMultivariateNormal expects value, loc [..., D, B]")


@pytest.mark.parametrize("name", ["cov_factor", "cov_diag", "corr", "mask"])
def test_batch_dims_of_each_argument_count(name):
    """The batch shape is the broadcast of *every* argument's leading dims: a batch carried only by
    ``name`` is the batch of GLSMultivariateNormal and of the log-density, and each batch element
    has the log-density of its own unbatched parameters."""
    args = _valid()
    mask = torch.tensor([[True, False], [True, True], [False, True]])
    batched = dict(args, mask=mask)
    if name == "cov_factor":
        batched[name] = torch.stack([args[name], 2 * args[name]])
    elif name == "cov_diag":
        batched[name] = torch.stack([args[name], 3 * args[name]])
    elif name == "corr":
        batched[name] = torch.stack([args[name], torch.eye(3, dtype=F64)])
    else:
        batched[name] = torch.stack([mask, torch.ones_like(mask)])
    shape, d, b, r = check_gls_args(
        batched["loc"], batched["cov_factor"], batched["cov_diag"], batched["corr"],
        batched["value"], batched["mask"],
    )  # fmt: skip
    assert (tuple(shape), d, b, r) == ((2,), 3, 2, 2)
    lp = gls_log_prob(
        batched["value"], batched["loc"], batched["cov_factor"], batched["cov_diag"],
        batched["corr"], batched["mask"],
    )  # fmt: skip
    assert lp.shape == (2,)
    for i in range(2):
        one = {k: (v[i] if k == name else v) for k, v in batched.items()}
        ref = gls_log_prob(
            one["value"], one["loc"], one["cov_factor"], one["cov_diag"], one["corr"], one["mask"]
        )
        torch.testing.assert_close(lp[i], ref)
    if name != "mask":
        dist = GLSMultivariateNormal(
            batched["loc"], batched["cov_factor"], batched["cov_diag"], batched["corr"]
        )
        assert dist.batch_shape == (2,)


@pytest.mark.parametrize("name", ["cov_factor", "cov_diag", "corr", "mask"])
def test_batch_dims_that_do_not_broadcast_raise(name):
    """Leading dims of ``name`` that do not broadcast with the others' raise the ValueError."""
    args = _valid(batch=(3,))
    args["mask"] = torch.ones(3, 3, 2, dtype=torch.bool)
    args[name] = torch.stack([args[name][0]] * 2)  # batch 2 against batch 3
    with pytest.raises(ValueError, match="gls_log_prob expects"):
        check_gls_args(
            args["loc"], args["cov_factor"], args["cov_diag"], args["corr"], args["value"],
            args["mask"],
        )  # fmt: skip
