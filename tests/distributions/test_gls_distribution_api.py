"""GLSMultivariateNormal as a torch Distribution: argument validation switches, ``expand`` with a
subclass instance, ``rsample`` dtypes, and ``dense_covariance`` batch broadcasting (issue 19)."""

from __future__ import annotations

import pytest
import torch

from probforecast.distributions import GLSMultivariateNormal
from probforecast.distributions._covariance_path import dense_covariance, kron_ones

from .helpers import random_params

F64 = torch.float64


def _corr(d):
    x = torch.arange(d, dtype=F64)
    return 0.5 ** (x[:, None] - x[None, :]).abs() + 1e-6 * torch.eye(d, dtype=F64)


def _params(batch=(), d=3, b=2, r=2):
    loc, factor, diag, value = random_params(batch, d, b, r, seed=0)
    return loc, factor, diag, _corr(d), value


def test_validate_args_false_skips_validation_in_init_and_expand():
    """``validate_args=False`` is honoured by ``__init__`` and by ``expand``: a negative variance
    is accepted (torch's default would validate and raise)."""
    loc, factor, diag, corr, _ = _params()
    diag = diag.clone()
    diag[0, 0] = -1.0
    with pytest.raises(ValueError):
        GLSMultivariateNormal(loc, factor, diag, corr, validate_args=True)
    dist = GLSMultivariateNormal(loc, factor, diag, corr, validate_args=False)
    expanded = dist.expand((4,))
    assert expanded.batch_shape == (4,) and not expanded._validate_args


def test_expand_keeps_validation_on():
    """An expanded copy of a validating distribution still validates samples: a NaN value
    raises in ``log_prob``."""
    loc, factor, diag, corr, value = _params()
    dist = GLSMultivariateNormal(loc, factor, diag, corr, validate_args=True).expand((2,))
    bad = value.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError):
        dist.log_prob(bad.expand(2, 3, 2))


class _Scaled(GLSMultivariateNormal):
    """A subclass with its own ``__init__`` that follows torch's ``expand(_instance=...)``."""

    def __init__(self, loc, cov_factor, cov_diag, corr, validate_args=None):
        super().__init__(loc, cov_factor, cov_diag, corr, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(_Scaled, _instance)
        return super().expand(batch_shape, _instance=new)


def test_expand_fills_the_subclass_instance():
    """``expand`` fills the ``_instance`` a subclass passes in (torch's protocol), so the result
    is that subclass, with expanded parameters and the same log-density per element."""
    loc, factor, diag, corr, value = _params()
    dist = _Scaled(loc, factor, diag, corr)
    expanded = dist.expand((3,))
    assert type(expanded) is _Scaled and expanded.batch_shape == (3,)
    torch.testing.assert_close(expanded.log_prob(value), dist.log_prob(value).expand(3))


def test_rsample_keeps_float32_under_a_float64_default_dtype():
    """float32 parameters give float32 samples even if torch's default dtype is float64."""
    loc, factor, diag, corr, _ = _params()
    dist = GLSMultivariateNormal(loc.float(), factor.float(), diag.float(), corr.float())
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        sample = dist.rsample((5,))
    finally:
        torch.set_default_dtype(old)
    assert sample.dtype == torch.float32 and sample.shape == (5, 3, 2)


@pytest.mark.parametrize("carrier", ["factor", "corr", "diag"])
def test_dense_covariance_broadcasts_every_argument(carrier):
    """``dense_covariance`` broadcasts the batch dims of ``F``, ``Cbig`` and ``d``: a batch carried
    by one of them alone gives ``[2, DB, DB]`` equal to ``(F F^T) ⊙ Cbig + diag(d)`` per element."""
    d, b, r = 2, 2, 3
    _, factor, diag, _ = random_params((2,), d, b, r, seed=1)
    f, dg = factor.flatten(-3, -2), diag.flatten(-2)
    cbig = kron_ones(torch.stack([_corr(d), torch.eye(d, dtype=F64)]), b)
    args = {"factor": f[0], "corr": cbig[0], "diag": dg[0]}
    args[carrier] = {"factor": f, "corr": cbig, "diag": dg}[carrier]
    got = dense_covariance(args["factor"], args["corr"], args["diag"])
    assert got.shape == (2, d * b, d * b)
    for i in range(2):
        one = {k: (v[i] if k == carrier else v) for k, v in args.items()}
        ref = (one["factor"] @ one["factor"].T) * one["corr"] + torch.diag(one["diag"])
        torch.testing.assert_close(got[i], ref)
