"""Batched building blocks of the GLS (low-rank + Kronecker) Gaussian, spec-gls §1.7–§1.9.

Conventions shared by every helper (``...`` = broadcastable batch dims):

- window of ``D`` steps, ``B`` series, rank ``R``; the ``DB`` vector is *time-major*: block
  ``k`` holds the ``B`` series at window position ``k`` (``vec`` of the ``B x D`` matrix);
- ``cov_factor [..., D, B, R]`` holds ``L_k``; ``A = blkdiag(L_0..L_{D-1})`` (``DB x DR``) is
  never formed;
- ``prec [..., D, B]`` is ``1 / d`` on observed entries and ``0`` on missing ones (that is
  ``E^{-1}`` of the observed sub-vector, zero-padded: see :func:`masked_precision`);
- the covariance is ``Sigma = A (C ⊗ I_R) A^T + diag(d)``, with block
  ``(i, j) = C[i, j] L_i L_j^T + delta_ij diag(d_i)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from probforecast.distributions._block_banded import BlockBandedFactor, block_banded_cholesky

if TYPE_CHECKING:
    from probforecast.distributions.ar_correlation import ARCorrelation


def check_gls_args(
    loc: Tensor,
    cov_factor: Tensor,
    cov_diag: Tensor,
    corr: Tensor | ARCorrelation,
    value: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    where: str = "gls_log_prob",
) -> tuple[torch.Size, int, int, int]:
    """Validate shapes at the boundary; return ``(batch_shape, D, B, R)``.

    Raises one ``ValueError`` that lists the expected and the received shapes. An
    ``ARCorrelation`` stands for its ``[..., D, D]`` matrix.
    """
    corr_matrix = corr if isinstance(corr, Tensor) else corr.shape_stand_in()
    tensors = {"loc": loc, "cov_factor": cov_factor, "cov_diag": cov_diag, "corr": corr_matrix}
    if value is not None:
        tensors["value"] = value
    if mask is not None:
        tensors["mask"] = mask
    got = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    expected = (
        f"{where} expects value, loc [..., D, B], cov_factor [..., D, B, R], cov_diag [..., D, B], "
        "corr [..., D, D] and an optional bool mask [..., D, B], with broadcastable leading "
        f"dims; got {got}"
    )
    if cov_factor.dim() < 3 or min(t.dim() for t in tensors.values()) < 2:
        raise ValueError(expected)
    d, b, r = cov_factor.shape[-3:]
    event = torch.Size((d, b))
    ok = (
        loc.shape[-2:] == event
        and cov_diag.shape[-2:] == event
        and corr_matrix.shape[-2:] == (d, d)
        and (value is None or value.shape[-2:] == event)
        and (mask is None or (mask.shape[-2:] == event and mask.dtype == torch.bool))
        and r >= 1
    )
    if not ok:
        raise ValueError(expected)
    try:
        batch_shape = torch.broadcast_shapes(
            loc.shape[:-2],
            cov_factor.shape[:-3],
            cov_diag.shape[:-2],
            corr_matrix.shape[:-2],
            *([] if value is None else [value.shape[:-2]]),
            *([] if mask is None else [mask.shape[:-2]]),
        )
    except RuntimeError as err:
        raise ValueError(expected) from err
    floats = [t for k, t in tensors.items() if k != "mask"]
    if any(not t.is_floating_point() for t in floats):
        raise ValueError(
            f"{where}: value, loc, cov_factor, cov_diag and corr must be floating point; got {got}"
        )
    return batch_shape, d, b, r


def masked_precision(cov_diag: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(prec, log_d)``, both ``[..., D, B]``: ``1/d`` and ``log d`` on observed entries, 0 elsewhere.

    Marginalising a Gaussian ``N(mu, A S A^T + E)`` onto the observed coordinates ``o`` keeps the
    structure with ``A -> A_o`` and ``E -> E_o``. All identities below only use ``A^T E^{-1}``,
    ``E^{-1}`` and ``log|E|``, and ``A_o^T E_o^{-1} = A^T P`` with ``P = diag(prec)`` zero on
    missing entries; so zeroing their precision (and their ``log d`` and ``2 pi`` terms)
    marginalises them out exactly. Missing entries never reach a division (``d`` may be 0 or NaN there).
    """
    if mask is None:
        return cov_diag.reciprocal(), cov_diag.log()
    safe = torch.where(mask, cov_diag, torch.ones_like(cov_diag))
    zero = torch.zeros_like(safe)
    return torch.where(mask, safe.reciprocal(), zero), torch.where(mask, safe.log(), zero)


def latent_capacitance(cov_factor: Tensor, prec: Tensor, corr_inv: Tensor) -> Tensor:
    """``Cap = C^{-1} ⊗ I_R + A^T E^{-1} A`` as a dense ``[..., DR, DR]`` matrix.

    ``A^T E^{-1} A = blkdiag_k(L_k^T diag(prec_k) L_k)`` because ``A`` is block diagonal; the
    Kronecker term puts ``C^{-1}[i, j] I_R`` in block ``(i, j)`` (time-major ``(k, r) -> k R + r``).
    Shapes: ``cov_factor [..., D, B, R]``, ``prec [..., D, B]``, ``corr_inv [..., D, D]``.
    Cost ``O(D B R^2 + D^2 R^2)``; never touches a ``DB``-sized matrix.
    """
    return assemble_capacitance(latent_blocks(cov_factor, prec), corr_inv)


def banded_latent_capacitance(
    cov_factor: Tensor,
    prec: Tensor,
    precision_band: Tensor,
    *,
    name: str,
    on_failure: Literal["raise", "identity"] = "raise",
) -> BlockBandedFactor:
    """Block-banded Cholesky factor of ``C^{-1} ⊗ I_R + blkdiag(L_k^T diag(prec_k) L_k)`` for a
    banded ``C^{-1}`` given by its lower band ``precision_band [..., p + 1, D]``
    (``band[..., j, k] = C^{-1}[k, k - j]``, e.g. ``ARCorrelation.precision_band()``):
    diagonal blocks ``C^{-1}[k, k] I_R + M_k``, sub-diagonal blocks ``C^{-1}[k, k - j] I_R``."""
    rank = cov_factor.shape[-1]
    eye = torch.eye(rank, dtype=precision_band.dtype, device=precision_band.device)
    diag = latent_blocks(cov_factor, prec) + precision_band[..., 0, :, None, None] * eye
    off = precision_band[..., 1:, :].mT[..., None, None] * eye  # [..., D, p, R, R]
    batch = torch.broadcast_shapes(diag.shape[:-3], off.shape[:-4])
    return block_banded_cholesky(
        diag.expand(*batch, *diag.shape[-3:]),
        off.expand(*batch, *off.shape[-4:]),
        name=name,
        on_failure=on_failure,
    )


def latent_blocks(cov_factor: Tensor, prec: Tensor) -> Tensor:
    """Diagonal blocks ``L_k^T diag(prec_k) L_k`` of ``A^T E^{-1} A``: ``[..., D, B, R], [..., D, B]
    -> [..., D, R, R]``."""
    return (cov_factor.mT * prec.unsqueeze(-2)) @ cov_factor


def assemble_capacitance(blocks: Tensor, corr_inv: Tensor) -> Tensor:
    """``C^{-1} ⊗ I_R + blkdiag(blocks)``: ``[..., D, R, R], [..., D, D] -> [..., DR, DR]``."""
    d, r = blocks.shape[-3], blocks.shape[-1]
    batch = torch.broadcast_shapes(blocks.shape[:-3], corr_inv.shape[:-2])
    cap = blocks.new_zeros(*batch, d, r, d, r)
    # Two strided views of one zeroed buffer (no broadcast product with I_R is materialised):
    # (i, r, j, r) -> [..., D, D, R] receives C^{-1}[i, j]; (k, r, k, s) -> [..., R, R, D] gets block k.
    cap.diagonal(dim1=-3, dim2=-1).copy_(corr_inv.unsqueeze(-1).expand(*batch, d, d, r))
    cap.diagonal(dim1=-4, dim2=-2).add_(blocks.movedim(-3, -1))
    return cap.reshape(*batch, d * r, d * r)


def latent_projection(cov_factor: Tensor, prec: Tensor, eta: Tensor) -> Tensor:
    """``u = A^T E^{-1} eta``: ``[..., D, B, R], [..., D, B], [..., D, B] -> [..., D R]``.

    Block ``k`` (``R`` entries) is ``L_k^T (prec_k * eta_k)``.
    """
    u = (cov_factor.mT @ (prec * eta).unsqueeze(-1)).squeeze(-1)  # [..., D, R]
    return u.flatten(-2)


def gls_logdet(cap_tril: Tensor, corr_tril: Tensor, log_d: Tensor, rank: int) -> Tensor:
    """Matrix determinant lemma for ``Sigma = E + A (C ⊗ I_R) A^T``:

    ``log|Sigma| = log|Cap| + log|C ⊗ I_R| + log|E|
    = 2 sum log diag(L_cap) + 2 R sum log diag(L_C) + sum log d`` (``|C ⊗ I_R| = |C|^R``).

    ``cap_tril [..., DR, DR]``, ``corr_tril [..., D, D]``, ``log_d [..., D, B]`` -> ``[...]``.
    """
    logdet_cap = 2 * cap_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return logdet_cap + gls_logdet_rest(corr_tril, log_d, rank)


def gls_logdet_rest(corr_tril: Tensor, log_d: Tensor, rank: int) -> Tensor:
    """``log|C ⊗ I_R| + log|E| = 2 R sum log diag(L_C) + sum log d``: :func:`gls_logdet` without
    the capacitance term. ``corr_tril [..., D, D]``, ``log_d [..., D, B]`` -> ``[...]``."""
    logdet_corr = 2 * rank * corr_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return logdet_corr + log_d.sum((-2, -1))


def solve_lower(tril: Tensor, rhs: Tensor, *, adjoint: bool = False) -> Tensor:
    """``L^{-1} x`` (or ``L^{-T} x`` with ``adjoint``): ``tril [..., n, n], rhs [..., n] -> [..., n]``.

    Batch dims where ``tril`` broadcasts (size 1 or absent, e.g. one capacitance shared by many
    samples or windows) are moved into the columns of one multi-right-hand-side solve instead of
    expanding ``tril``, which keeps the shared case as cheap as a single matrix solve.
    """
    n = tril.shape[-1]
    full = torch.broadcast_shapes(tril.shape[:-2], rhs.shape[:-1])
    padded = (1,) * (len(full) - tril.dim() + 2) + tuple(tril.shape[:-2])
    shared = [i for i, (t, f) in enumerate(zip(padded, full, strict=True)) if t == 1 and f > 1]
    own = [i for i in range(len(full)) if i not in shared]
    matrix = tril.reshape(*[padded[i] for i in own], n, n)
    if adjoint:
        matrix = matrix.mT
    x = rhs.expand(*full, n).permute(*own, len(full), *shared)  # [own..., n, shared...]
    x = x.reshape(*[full[i] for i in own], n, -1)
    sol = torch.linalg.solve_triangular(matrix, x, upper=adjoint)  # [own..., n, prod(shared)]
    sol = sol.reshape(*[full[i] for i in own], n, *[full[i] for i in shared])
    perm = [own.index(j) if j in own else len(own) + 1 + shared.index(j) for j in range(len(full))]
    return sol.permute(*perm, len(own))


def gls_mahalanobis(prec: Tensor, eta: Tensor, cap_tril: Tensor, u: Tensor) -> Tensor:
    """Woodbury: ``eta^T Sigma^{-1} eta = eta^T E^{-1} eta - ||L_cap^{-1} A^T E^{-1} eta||^2``.

    From ``Sigma^{-1} = E^{-1} - E^{-1} A Cap^{-1} A^T E^{-1}`` with ``Cap = L_cap L_cap^T``
    (one triangular solve, no inverse). ``prec, eta [..., D, B]``, ``cap_tril [..., DR, DR]``,
    ``u = A^T E^{-1} eta [..., DR]`` -> ``[...]``.
    """
    k = solve_lower(cap_tril, u)
    return (prec * eta.square()).sum((-2, -1)) - k.square().sum(-1)


def gls_covariance_matrix(cov_factor: Tensor, cov_diag: Tensor, corr: Tensor) -> Tensor:
    """Dense ``Sigma [..., DB, DB]`` (time-major) — for tests and small problems only.

    ``Sigma[(i, b), (j, c)] = C[i, j] sum_r L_i[b, r] L_j[c, r] + delta_ij delta_bc d_i[b]``.
    Memory ``O(D^2 B^2)``: the likelihood itself never builds it.
    """
    d, b, _ = cov_factor.shape[-3:]
    low = torch.einsum("...ij,...ibr,...jcr->...ibjc", corr, cov_factor, cov_factor)
    eye_d = torch.eye(d, dtype=cov_diag.dtype, device=cov_diag.device)
    eye_b = torch.eye(b, dtype=cov_diag.dtype, device=cov_diag.device)
    diag = cov_diag[..., :, :, None, None] * eye_b[:, None, :] * eye_d[:, None, :, None]
    full = low + diag
    return full.reshape(*full.shape[:-4], d * b, d * b)
