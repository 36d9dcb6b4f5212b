"""GLS likelihood: a Gaussian over a window of ``D`` steps x ``B`` series with correlated errors.

Zheng & Sun (NeurIPS 2024), spec-gls §1.5–§1.9. Per window position ``k`` a GPVar-style head
gives ``mu_k [B]``, ``L_k [B, R]`` and variances ``d_k [B]``; the errors
``eta_k = L_k r_k + eps_k`` share ``R`` latent AR-like processes whose rows are iid
``N(0, C)`` over the window (``r ~ N(0, C ⊗ I_R)``), so the time-major ``DB`` vector is

    z ~ N(mu, Sigma),   Sigma = blkdiag(L_0..L_{D-1}) (C ⊗ I_R) blkdiag(L)^T + diag(d),

block ``(i, j)`` of ``Sigma`` being ``C[i, j] L_i L_j^T + delta_ij diag(d_i)``. With ``C = I``
it is the product of ``D`` independent ``LowRankMultivariateNormal`` s (the GPVar baseline).

:func:`gls_log_prob` evaluates it with Woodbury and the matrix determinant lemma in
``O(D B R^2 + D^3 R^3)`` time and ``O(D B R + D^2 R^2)`` memory: the ``DB x DB`` covariance and the
``DB x DR`` block-diagonal factor are never formed. :class:`GLSMultivariateNormal` wraps it as a
``torch.distributions.Distribution``; :func:`gls_conditional_next` gives the one-step-ahead
conditional used by the rolling sampler (paper Eq. 12).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import lazy_property

from probforecast.distributions._backend import choose_method, get_gls_options
from probforecast.distributions._capacitance import capacitance_logdet_quad
from probforecast.distributions._cholesky import safe_cholesky
from probforecast.distributions._covariance_path import covariance_terms
from probforecast.distributions._gls_ops import (
    banded_latent_capacitance,
    check_gls_args,
    gls_covariance_matrix,
    gls_logdet,
    gls_logdet_rest,
    latent_blocks,
    latent_capacitance,
    latent_projection,
    masked_precision,
)
from probforecast.distributions.ar_correlation import ARCorrelation

__all__ = ["GLSMultivariateNormal", "gls_log_prob"]

_LOG_2PI = math.log(2 * math.pi)


def _corr_tril_and_inverse(corr: Tensor) -> tuple[Tensor, Tensor]:
    """``L_C = chol(C)`` and ``C^{-1} = cholesky_inverse(L_C)``, both ``[..., D, D]`` (D x D only)."""
    corr_tril = safe_cholesky(corr, name="correlation matrix C").tril
    return corr_tril, torch.cholesky_inverse(corr_tril)


def gls_log_prob(
    value: Tensor,
    loc: Tensor,
    cov_factor: Tensor,
    cov_diag: Tensor,
    corr: Tensor | ARCorrelation,
    mask: Tensor | None = None,
) -> Tensor:
    """Log density of the GLS window Gaussian, ``[...]``.

    ``log p(z) = -1/2 (n log 2 pi + log|Sigma| + eta^T Sigma^{-1} eta)`` with ``eta = z - mu``,
    ``Sigma = A (C ⊗ I_R) A^T + E``, ``A = blkdiag(L_k)``, ``E = diag(d)`` and ``n = D B`` (the
    number of observed entries with a mask), computed by the cheaper of two exact methods
    (:func:`~probforecast.distributions._backend.choose_method`; :func:`gls_options` overrides):

    ``"capacitance"`` (Woodbury, cost ``~ (DR)^3``, used when ``B >= R``):

    - ``Cap = C^{-1} ⊗ I_R + blkdiag(L_k^T diag(1/d_k) L_k)`` (``DR x DR``; ``C^{-1}`` from the
      Cholesky factor of the ``D x D`` matrix ``C``) and ``L_cap = chol(Cap)``;
    - ``log|Sigma| = 2 sum log diag L_cap + 2 R sum log diag L_C + sum log d``;
    - ``eta^T Sigma^{-1} eta = sum eta^2 / d - ||L_cap^{-1} A^T E^{-1} eta||^2``.

    ``"covariance"`` (cost ``~ (DB)^3 + (DB)^2 R``, used when ``B < R``): Cholesky of the dense
    ``DB x DB`` ``Sigma`` itself (:mod:`~probforecast.distributions._covariance_path`).

    ``"banded"`` (cost ``~ D p^2 R^3``, used when ``corr`` is an
    :class:`~probforecast.distributions.ar_correlation.ARCorrelation`): the capacitance above is
    block-banded, since the AR(p) ``C^{-1}`` is banded and known in closed form; its block-banded
    Cholesky factor (:mod:`~probforecast.distributions._block_banded`) gives ``log|Cap|`` and the
    quadratic form, and ``log|C|`` is closed-form too. The other methods take such a ``corr`` as
    its dense matrix (``ARCorrelation.dense()``, no jitter), so all three agree.

    The pair ``(log|K|, u^T K^{-1} u)`` of the factorised matrix has a closed-form backward
    (:class:`~probforecast.distributions._capacitance.SPDLogdetQuad`) instead of autograd
    through the Cholesky factorisation. Every Cholesky factorisation escalates a relative jitter
    on failing batch elements (logged) and raises :class:`GLSCholeskyError` if even the largest
    jitter fails, so training never silently turns NaN. Differentiable in every input.

    Args:
        value: ``[..., D, B]`` observations ``z`` (time-major: row ``k`` = window position ``k``).
        loc: ``[..., D, B]`` means ``mu``.
        cov_factor: ``[..., D, B, R]`` factors ``L_k``.
        cov_diag: ``[..., D, B]`` variances ``d`` (> 0 where observed).
        corr: ``[..., D, D]`` SPD correlation matrix ``C`` (e.g. ``[D, D]`` shared by the batch),
            or an ``ARCorrelation`` (batch ``[...]``, ``D`` positions).
        mask: optional bool ``[..., D, B]``, ``True`` = observed. Missing entries are marginalised
            out exactly (their precision ``1/d``, residual, ``log d`` and ``log 2 pi`` terms are
            zeroed; see :func:`~probforecast.distributions._gls_ops.masked_precision`); their
            ``value``, ``loc`` and ``cov_diag`` may hold anything, NaN included.

    Returns:
        ``[...]``: the broadcast batch shape of all inputs.
    """
    banded = isinstance(corr, ARCorrelation)
    _, d, b, rank = check_gls_args(loc, cov_factor, cov_diag, corr, value, mask)
    options = get_gls_options()
    eta = value - loc
    if mask is not None:
        eta = torch.where(mask, eta, torch.zeros_like(eta))
    method = choose_method(d, b, rank, options.method, banded_precision=banded)
    if isinstance(corr, ARCorrelation) and method != "banded":
        corr = corr.dense()
    if isinstance(corr, ARCorrelation):
        prec, log_d = masked_precision(cov_diag, mask)
        factor = banded_latent_capacitance(
            cov_factor, prec, corr.precision_band(), name="GLS capacitance"
        )
        u = latent_projection(cov_factor, prec, eta).unflatten(-1, (d, rank))
        quad = factor.solve_lower(u).square().sum((-2, -1))
        logdet = factor.logdet() + rank * corr.logdet() + log_d.sum((-2, -1))
        maha = (prec * eta.square()).sum((-2, -1)) - quad
    elif method == "covariance":
        logdet, maha = covariance_terms(
            eta, cov_factor, cov_diag, corr, mask, analytic=options.analytic_backward
        )
    else:
        prec, log_d = masked_precision(cov_diag, mask)
        corr_tril, corr_inv = _corr_tril_and_inverse(corr)
        logdet_cap, quad = capacitance_logdet_quad(
            latent_blocks(cov_factor, prec),
            corr_inv,
            latent_projection(cov_factor, prec, eta),
            analytic=options.analytic_backward,
        )
        logdet = logdet_cap + gls_logdet_rest(corr_tril, log_d, rank)
        maha = (prec * eta.square()).sum((-2, -1)) - quad  # Woodbury, see gls_mahalanobis
    n: float | Tensor
    if mask is None:
        n = float(loc.shape[-2] * loc.shape[-1])
    else:
        n = mask.sum((-2, -1)).to(logdet.dtype)
    return -0.5 * (n * _LOG_2PI + logdet + maha)


class GLSMultivariateNormal(Distribution):
    """Gaussian over a ``D x B`` window with covariance ``A (C ⊗ I_R) A^T + diag(d)``.

    ``A = blkdiag(L_0..L_{D-1})``, time-major ``vec``; event shape ``(D, B)``. See the module
    docstring and :func:`gls_log_prob`.

    Args:
        loc: ``[..., D, B]`` means.
        cov_factor: ``[..., D, B, R]`` low-rank factors.
        cov_diag: ``[..., D, B]`` variances.
        corr: ``[..., D, D]`` SPD correlation matrix (may be shared, e.g. ``[D, D]``).
    """

    arg_constraints = {
        "loc": constraints.independent(constraints.real, 2),
        "cov_factor": constraints.independent(constraints.real, 3),
        "cov_diag": constraints.independent(constraints.positive, 2),
        "corr": constraints.positive_definite,
    }
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(
        self,
        loc: Tensor,
        cov_factor: Tensor,
        cov_diag: Tensor,
        corr: Tensor,
        validate_args: bool | None = None,
    ) -> None:
        batch_shape, d, b, r = check_gls_args(
            loc, cov_factor, cov_diag, corr, where="GLSMultivariateNormal"
        )
        self.loc = loc.expand(*batch_shape, d, b)
        self.cov_factor = cov_factor.expand(*batch_shape, d, b, r)
        self.cov_diag = cov_diag.expand(*batch_shape, d, b)
        self.corr = corr  # kept un-expanded: the D x D work is shared by broadcasting
        super().__init__(batch_shape, torch.Size((d, b)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GLSMultivariateNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape + self.event_shape)
        new.cov_factor = self.cov_factor.expand(batch_shape + self.cov_factor.shape[-3:])
        new.cov_diag = self.cov_diag.expand(batch_shape + self.event_shape)
        new.corr = self.corr
        super(GLSMultivariateNormal, new).__init__(
            batch_shape, self.event_shape, validate_args=False
        )
        new._validate_args = self._validate_args
        return new

    @property
    def rank(self) -> int:
        return self.cov_factor.shape[-1]

    @lazy_property
    def _corr_tril(self) -> Tensor:
        """``L_C [..., D, D]`` with ``C = L_C L_C^T``."""
        return safe_cholesky(self.corr, name="correlation matrix C").tril

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @lazy_property
    def variance(self) -> Tensor:
        """``diag(Sigma) = sum_r L[..., r]^2 + d`` (``C`` has unit diagonal up to its jitter:
        the exact ``C[k, k]`` is used)."""
        corr_diag = self.corr.diagonal(dim1=-2, dim2=-1)[..., :, None]  # [..., D, 1]
        return corr_diag * self.cov_factor.square().sum(-1) + self.cov_diag

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        """Dense ``Sigma [..., DB, DB]`` (time-major). ``O(D^2 B^2)`` memory: small problems only."""
        return gls_covariance_matrix(self.cov_factor, self.cov_diag, self.corr).expand(
            self.batch_shape + (self.loc.shape[-2] * self.loc.shape[-1],) * 2
        )

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        """``eta = A vec(r) + sqrt(d) * eps``: ``r [..., R, D]`` has iid rows ``N(0, C)``
        (``r = xi L_C^T``), so ``eta_k = L_k r[:, k]``; returns ``loc + eta``,
        ``sample_shape + batch_shape + (D, B)``."""
        shape = self._extended_shape(sample_shape)
        d = shape[-2]
        dtype, device = self.loc.dtype, self.loc.device
        xi = torch.randn(shape[:-2] + (self.rank, d), dtype=dtype, device=device)
        r = xi @ self._corr_tril.mT  # [..., R, D], rows ~ N(0, C)
        low = (self.cov_factor @ r.mT.unsqueeze(-1)).squeeze(-1)  # [..., D, B]
        eps = torch.randn(shape, dtype=dtype, device=device)
        return self.loc + low + self.cov_diag.sqrt() * eps

    def log_prob(self, value: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log p(value)`` (see :func:`gls_log_prob`); ``mask [..., D, B]`` marginalises missing entries."""
        if self._validate_args:
            self._validate_sample(value)
        return gls_log_prob(value, self.loc, self.cov_factor, self.cov_diag, self.corr, mask=mask)

    def entropy(self) -> Tensor:
        """``1/2 (n (1 + log 2 pi) + log|Sigma|)``, ``n = D B``."""
        prec, log_d = masked_precision(self.cov_diag, None)
        corr_inv = torch.cholesky_inverse(self._corr_tril)
        cap_tril = safe_cholesky(
            latent_capacitance(self.cov_factor, prec, corr_inv), name="GLS capacitance"
        ).tril
        logdet = gls_logdet(cap_tril, self._corr_tril, log_d, self.rank)
        n = self.loc.shape[-2] * self.loc.shape[-1]
        return 0.5 * (n * (1.0 + _LOG_2PI) + logdet).expand(self.batch_shape)
