"""One-step-ahead conditional of the GLS window Gaussian (paper Eq. 12, spec-gls §3.2).

Given the last ``D - 1`` residuals ``eta_obs`` of a path (oldest first) with their ``L`` and
``d``, and ``C = C_{t+1}`` for the window ending at the new step (position ``D - 1``):

    eta_{t+1} | eta_obs ~ N(Sigma_* Sigma_obs^{-1} eta_obs, Sigma_{t+1} - Sigma_* Sigma_obs^{-1} Sigma_*^T).

Latent-space form (no ``(D-1)B``-sized matrix): write ``C_o = C[:D-1, :D-1]``,
``c = C[D-1, :D-1]``, ``A_o = blkdiag(L_0..L_{D-2})``, ``E_o = diag(d_obs)``. The latent
``r_obs | eta_obs ~ N(m, Cap_o^{-1})`` with ``Cap_o = C_o^{-1} ⊗ I_R + A_o^T E_o^{-1} A_o`` and
``m = Cap_o^{-1} A_o^T E_o^{-1} eta_obs``; ``r_{t+1} | r_obs ~ N(G r_obs, s I_R)`` with
``g = C_o^{-1} c``, ``G = g^T ⊗ I_R`` and ``s = C[D-1, D-1] - c^T g``; and
``eta_{t+1} = L_{t+1} r_{t+1} + eps`` with ``eps`` independent of the past. Hence

    mean = L_{t+1} (G m),    cov = L_{t+1} V L_{t+1}^T + diag(d_{t+1}),
    V = s I_R + G Cap_o^{-1} G^T   (R x R),

returned as rank-``R`` factor ``L_{t+1} chol(V)`` and diagonal ``d_{t+1}``.
Cost ``O((DR)^3 + B R^2)`` per batch element.

AR(p) correlation (``corr`` an :class:`~probforecast.distributions.ar_correlation.ARCorrelation`,
``D - 1 >= p``): ``C_o^{-1}`` is banded and known in closed form, so ``Cap_o`` is block-banded
(block-banded Cholesky, ``O(D p^2 R^3)``); ``g`` is ``phi`` on the last ``p`` positions
(``g[D-1-i] = phi_i``, the AR predictor) and ``s`` the innovation variance, so ``G m`` and
``G Cap_o^{-1} G^T`` read only the last ``p`` blocks: with ``T`` the trailing ``p x p`` block
corner of ``chol(Cap_o)``, that corner of ``Cap_o^{-1}`` is ``T^{-T} T^{-1}``. With
``D - 1 < p`` the dense formulas run on ``corr.dense()``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from probforecast.distributions._cholesky import safe_cholesky, warn_rate_limited
from probforecast.distributions._gls_ops import (
    banded_latent_capacitance,
    latent_capacitance,
    latent_projection,
    masked_precision,
    solve_lower,
)
from probforecast.distributions.ar_correlation import ARCorrelation

__all__ = ["GLSConditional", "gls_conditional_next", "sample_conditional"]


class GLSConditional(NamedTuple):
    """``N(loc, cov_factor cov_factor^T + diag(cov_diag))`` over the ``B`` series of the next step.

    ``loc [..., B]``, ``cov_factor [..., B, R]``, ``cov_diag [..., B]``. ``num_fallbacks``: batch
    elements (of the broadcast batch) whose Cholesky needed a jitter or that fell back to the
    unconditional distribution; ``num_unconditional``: those of them that fell back.
    """

    loc: Tensor
    cov_factor: Tensor
    cov_diag: Tensor
    num_fallbacks: int = 0
    num_unconditional: int = 0

    def rsample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = (),
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Reparameterised draw, ``sample_shape + [..., B]`` (see :func:`sample_conditional`)."""
        return sample_conditional(self, sample_shape, generator=generator)


def sample_conditional(
    cond: GLSConditional,
    sample_shape: torch.Size | tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    """``loc + cov_factor xi + sqrt(cov_diag) eps``, ``xi ~ N(0, I_R)``, ``eps ~ N(0, I_B)``.

    Returns ``sample_shape + loc.shape`` (``[..., B]``).
    """
    batch = torch.broadcast_shapes(cond.loc.shape, cond.cov_factor.shape[:-1], cond.cov_diag.shape)
    shape = torch.Size(sample_shape) + batch
    rank = cond.cov_factor.shape[-1]
    dtype, device = cond.loc.dtype, cond.loc.device
    xi = torch.randn(shape[:-1] + (rank, 1), dtype=dtype, device=device, generator=generator)
    eps = torch.randn(shape, dtype=dtype, device=device, generator=generator)
    return cond.loc + (cond.cov_factor @ xi).squeeze(-1) + cond.cov_diag.sqrt() * eps


def _check_conditional_args(
    eta_obs, factor_obs, diag_obs, factor_next, diag_next, corr, mask_obs
) -> torch.Size:
    """Validate shapes at the boundary; return the broadcast batch shape."""
    if isinstance(corr, ARCorrelation):  # checked as the [..., D, D] matrix it stands for
        corr = corr.shape_stand_in()
    got = (
        f"eta_obs {tuple(eta_obs.shape)}, factor_obs {tuple(factor_obs.shape)}, diag_obs "
        f"{tuple(diag_obs.shape)}, factor_next {tuple(factor_next.shape)}, diag_next "
        f"{tuple(diag_next.shape)}, corr {tuple(corr.shape)}"
        + ("" if mask_obs is None else f", mask_obs {tuple(mask_obs.shape)}")
    )
    expected = (
        "gls_conditional_next expects eta_obs [..., D-1, B], factor_obs [..., D-1, B, R], "
        "diag_obs [..., D-1, B], factor_next [..., B, R], diag_next [..., B], corr [..., D, D] "
        f"and an optional bool mask_obs [..., D-1, B]; got {got}"
    )
    if factor_next.dim() < 2 or factor_obs.dim() < 3 or corr.dim() < 2 or eta_obs.dim() < 2:
        raise ValueError(expected)
    b, r = factor_next.shape[-2:]
    d = corr.shape[-1]
    obs = torch.Size((d - 1, b))
    ok = (
        corr.shape[-2] == d
        and d >= 1
        and diag_next.shape[-1:] == (b,)
        and factor_obs.shape[-3:] == obs + (r,)
        and eta_obs.shape[-2:] == obs
        and diag_obs.shape[-2:] == obs
        and (mask_obs is None or (mask_obs.shape[-2:] == obs and mask_obs.dtype == torch.bool))
    )
    if not ok:
        raise ValueError(expected)
    try:
        return torch.broadcast_shapes(
            eta_obs.shape[:-2], factor_obs.shape[:-3], diag_obs.shape[:-2],
            factor_next.shape[:-2], diag_next.shape[:-1], corr.shape[:-2],
            *([] if mask_obs is None else [mask_obs.shape[:-2]]),
        )  # fmt: skip
    except RuntimeError as err:
        raise ValueError(expected) from err


def _latent_dense(
    factor_obs: Tensor, prec: Tensor, eta: Tensor, corr: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(G m [..., R], V [..., R, R], failed, jittered)`` from the dense ``C`` (module docstring)."""
    d, rank = corr.shape[-1], factor_obs.shape[-1]
    corr_o, c_vec, c_nn = corr[..., :-1, :-1], corr[..., -1, :-1], corr[..., -1, -1]
    chol_o = safe_cholesky(corr_o, name="conditional C_o", on_failure="identity")
    corr_o_inv = torch.cholesky_inverse(chol_o.tril)
    g = torch.cholesky_solve(c_vec.unsqueeze(-1), chol_o.tril).squeeze(-1)  # [..., D-1]
    schur = (c_nn - (c_vec * g).sum(-1)).clamp_min(0.0)  # s = C_nn - c^T C_o^{-1} c
    chol_cap = safe_cholesky(
        latent_capacitance(factor_obs, prec, corr_o_inv),
        name="conditional capacitance",
        on_failure="identity",
    )
    u = latent_projection(factor_obs, prec, eta)  # [..., (D-1) R]
    m = solve_lower(chol_cap.tril, solve_lower(chol_cap.tril, u), adjoint=True)  # Cap_o^{-1} u
    gm = (g.unsqueeze(-1) * m.unflatten(-1, (d - 1, rank))).sum(-2)  # G m, [..., R]
    eye_r = torch.eye(rank, dtype=factor_obs.dtype, device=factor_obs.device)
    g_kron = (g[..., :, None, None] * eye_r).flatten(-3, -2)  # G^T = g ⊗ I_R, [..., (D-1) R, R]
    w = torch.linalg.solve_triangular(chol_cap.tril, g_kron, upper=False)  # L_cap^{-1} G^T
    v = schur[..., None, None] * eye_r + w.mT @ w  # V = s I + G Cap^{-1} G^T, [..., R, R]
    return gm, v, chol_o.failed | chol_cap.failed, chol_o.jittered | chol_cap.jittered


def _latent_banded(
    factor_obs: Tensor, prec: Tensor, eta: Tensor, corr: ARCorrelation
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(G m, V, failed, jittered)`` for an AR(p) ``C`` with ``D - 1 >= p`` (module docstring)."""
    d, rank, order = corr.size, factor_obs.shape[-1], corr.order
    factor = banded_latent_capacitance(
        factor_obs,
        prec,
        corr.leading(d - 1).precision_band(),  # C_o^{-1}, [..., p + 1, D - 1]
        name="conditional capacitance",
        on_failure="identity",
    )
    eye_r = torch.eye(rank, dtype=factor_obs.dtype, device=factor_obs.device)
    u = latent_projection(factor_obs, prec, eta).unflatten(-1, (d - 1, rank))
    m = factor.solve_upper(factor.solve_lower(u))  # Cap_o^{-1} u, [..., D - 1, R]
    g_tail = corr.phi.flip(-1)  # g at positions D-1-p .. D-2: phi_p .. phi_1
    gm = (g_tail.unsqueeze(-1) * m[..., -order:, :]).sum(-2)  # G m, [..., R]
    g_kron = (g_tail[..., :, None, None] * eye_r).flatten(-3, -2)  # [..., p R, R]
    w = factor.tail_inverse_factor(order) @ g_kron  # T^{-1} G_tail^T
    s = corr.innovation_variance()
    v = s[..., None, None] * eye_r + w.mT @ w
    return gm, v, factor.failed, factor.jittered


def gls_conditional_next(
    eta_obs: Tensor,
    factor_obs: Tensor,
    diag_obs: Tensor,
    factor_next: Tensor,
    diag_next: Tensor,
    corr: Tensor | ARCorrelation,
    *,
    mask_obs: Tensor | None = None,
) -> GLSConditional:
    """Distribution of the next residual ``eta_{t+1} [..., B]`` given the previous ``D - 1``.

    See the module docstring for the identities. ``D = 1`` (no history) gives the unconditional
    ``N(0, L L^T + diag d)``; a missing history entry (``mask_obs`` False) is marginalised out
    (zero precision, as in :func:`~probforecast.distributions.gls.gls_log_prob`).

    Numerical safety: the Cholesky factorisations of ``C_o``, ``Cap_o`` and ``V`` escalate a
    relative jitter on failing batch elements; elements that still fail get the unconditional
    distribution. Both are counted in ``num_fallbacks`` and logged (rate-limited warning).

    Args:
        eta_obs: ``[..., D-1, B]`` past residuals, oldest first.
        factor_obs: ``[..., D-1, B, R]``; diag_obs: ``[..., D-1, B]`` their ``L`` and ``d``.
        factor_next: ``[..., B, R]``; diag_next: ``[..., B]`` the next step's ``L`` and ``d``.
        corr: ``[..., D, D]`` ``C_{t+1}``; the new point is position ``D - 1``. Or an
            ``ARCorrelation`` (batch ``[...]``, ``D`` positions): the block-banded computation.
        mask_obs: optional bool ``[..., D-1, B]``, ``True`` = observed.
    """
    batch = _check_conditional_args(
        eta_obs, factor_obs, diag_obs, factor_next, diag_next, corr, mask_obs
    )
    d = corr.size if isinstance(corr, ARCorrelation) else corr.shape[-1]
    rank = factor_next.shape[-1]
    if d == 1:
        loc = diag_next.new_zeros(batch + diag_next.shape[-1:])
        return GLSConditional(loc, factor_next, diag_next, 0, 0)
    if isinstance(corr, ARCorrelation) and d - 1 < corr.order:
        corr = corr.dense()
    prec, _ = masked_precision(diag_obs, mask_obs)
    eta = eta_obs if mask_obs is None else torch.where(mask_obs, eta_obs, torch.zeros_like(eta_obs))
    if isinstance(corr, ARCorrelation):
        gm, v, failed, jittered = _latent_banded(factor_obs, prec, eta, corr)
    else:
        gm, v, failed, jittered = _latent_dense(factor_obs, prec, eta, corr)
    chol_v = safe_cholesky(v, name="conditional latent covariance V", on_failure="identity")
    failed, jittered = failed | chol_v.failed, jittered | chol_v.jittered

    b = factor_next.shape[-2]
    loc = (factor_next @ gm.unsqueeze(-1)).squeeze(-1).expand(batch + (b,))  # [..., B]
    cov_factor = (factor_next @ chol_v.tril).expand(batch + (b, rank))  # [..., B, R]
    failed, jittered = failed.expand(batch), jittered.expand(batch)
    num_unconditional = int(failed.sum())
    num_fallbacks = int((failed | jittered).sum())
    if num_unconditional:
        warn_rate_limited(
            "conditional:unconditional",
            f"gls_conditional_next: {num_unconditional} of {failed.numel()} batch elements fell "
            "back to the unconditional distribution N(0, L L^T + diag d)",
        )
        loc = torch.where(failed[..., None], torch.zeros_like(loc), loc)
        cov_factor = torch.where(failed[..., None, None], factor_next, cov_factor)
    return GLSConditional(loc, cov_factor, diag_next, num_fallbacks, num_unconditional)
