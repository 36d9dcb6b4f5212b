"""D x D temporal correlation matrices ``C`` of the GLS likelihood (spec-gls §1.6, §7.2).

Both constructions are stationary, hence symmetric Toeplitz: ``C[i, j] = rho(|i - j|)`` with
``rho(0) = 1``, plus a small diagonal ``jitter`` (``1e-6``, the official code's ``sigma_min^2``).
The jitter is *not* renormalised away, so ``diag(C) = 1 + jitter``; the likelihood is that of
the model with this ``C``.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
from torch import Tensor

from probforecast.distributions._cholesky import safe_cholesky

__all__ = [
    "ar_toeplitz_correlation",
    "default_lengthscales",
    "kernel_mixture_correlation",
    "log_det_corr",
]

_MIN_LENGTHSCALE = 1e-3  # exp(-1 / 1e-6) == 0: a smaller lengthscale is the identity anyway


def default_lengthscales(num_components: int, start: float = 1.0) -> list[float]:
    """The ``M - 1`` fixed SE lengthscales ``start, start + 1, ...`` (paper: start 0.5 or 1.0).

    ``default_lengthscales(4, 0.5) == [0.5, 1.5, 2.5]``; ``default_lengthscales(3, 1.0) == [1.0, 2.0]``.
    ``num_components`` counts the identity component, hence ``M - 1`` values.
    """
    if num_components < 1 or start <= 0:
        raise ValueError(
            f"need num_components >= 1 (SE kernels + identity) and start > 0; "
            f"got num_components={num_components}, start={start}"
        )
    return [float(start) + k for k in range(num_components - 1)]


def _flush_tiny(corr: Tensor) -> Tensor:
    """Set entries with ``|C_ij| < eps^2`` (float32: 1.4e-14) to exactly 0.

    SE kernels and AR autocorrelations decay into subnormal numbers (``exp(-(i-j)^2 / 0.25)``
    is below 1e-38 from lag 5), and subnormal arithmetic makes the CPU Cholesky and solves of
    the likelihood several times slower. Changing ``C`` by less than ``eps^2`` is invisible at
    the working precision; flushed entries get zero gradient.
    """
    cutoff = torch.finfo(corr.dtype).eps ** 2
    return torch.where(corr.abs() < cutoff, torch.zeros_like(corr), corr)


def _toeplitz(rho: Tensor) -> Tensor:
    """``rho [..., D] -> [..., D, D]`` with ``C[i, j] = rho[|i - j|]``."""
    size = rho.shape[-1]
    pos = torch.arange(size, device=rho.device)
    return rho[..., (pos[:, None] - pos[None, :]).abs()]


def kernel_mixture_correlation(
    weights: Tensor, lengthscales: Tensor, size: int, jitter: float = 1e-6
) -> Tensor:
    """Mixture of SE kernels and the identity: ``[..., M], [..., M-1] -> C [..., size, size]``.

    ``C = sum_{m < M} w_m K_m + w_M I + jitter I`` with ``K_m[i, j] = exp(-(i - j)^2 / l_m^2)``
    (no factor 2, positions ``0..size-1``). The *last* weight belongs to the identity.

    Args:
        weights: ``[..., M]`` nonnegative mixture weights summing to 1 (e.g. a softmax output);
            not renormalised here.
        lengthscales: ``[M - 1]`` fixed or ``[..., M - 1]`` (broadcastable against ``weights``)
            learnable positive lengthscales; values below ``1e-3`` are clamped (such a kernel
            is the identity to machine precision) to keep gradients finite.
        size: ``D``.
        jitter: added to the diagonal (not renormalised: ``diag(C) = 1 + jitter`` when the
            weights sum to 1).

    Off-diagonal entries below ``eps^2`` of the dtype are set to 0 (no subnormal numbers).

    If ``w_M > 0`` then ``lambda_min(C) >= w_M + jitter``, so ``C`` is SPD.
    """
    lengthscales = torch.as_tensor(lengthscales, dtype=weights.dtype, device=weights.device)
    if (
        weights.dim() < 1
        or lengthscales.dim() < 1
        or weights.shape[-1] != lengthscales.shape[-1] + 1
    ):
        raise ValueError(
            "kernel_mixture_correlation expects weights [..., M] (identity weight last) and "
            f"lengthscales [..., M-1]; got weights {tuple(weights.shape)}, "
            f"lengthscales {tuple(lengthscales.shape)}"
        )
    if size < 1:
        raise ValueError(f"size (D) must be >= 1; got {size}")
    pos = torch.arange(size, device=weights.device)  # int64: exact (bf16 has 8 bits, 257 -> 256)
    sq_dist = (pos[:, None] - pos[None, :]) ** 2  # [D, D] int64, promoted to weights' dtype below
    scale2 = lengthscales.clamp_min(_MIN_LENGTHSCALE) ** 2  # [..., M-1]
    kernels = torch.exp(-sq_dist / scale2[..., None, None])  # [..., M-1, D, D]
    eye = torch.eye(size, dtype=weights.dtype, device=weights.device)
    corr = _flush_tiny((weights[..., :-1, None, None] * kernels).sum(-3))
    return corr + (weights[..., -1:, None] + jitter) * eye


def _stationary_phi(phi: Tensor, max_root: float, mode: str) -> Tensor:
    """Keep an AR(p) coefficient vector stationary: ``phi [..., p] -> [..., p]``.

    The characteristic roots ``lambda`` of ``z^p - phi_1 z^(p-1) - ... - phi_p`` are the
    eigenvalues of the companion matrix; the process is stationary iff ``max |lambda| < 1``.
    ``phi_i -> alpha^i phi_i`` maps every root ``lambda -> alpha lambda``, so with
    ``alpha = min(1, max_root / max|lambda|)`` the result has all roots within ``max_root``
    (``phi`` is unchanged when it already is). ``alpha`` is a constant in the backward pass.
    """
    p = phi.shape[-1]
    with torch.no_grad():
        companion = torch.zeros(*phi.shape[:-1], p, p, dtype=phi.dtype, device=phi.device)
        companion[..., 0, :] = phi.detach()
        if p > 1:
            companion[..., 1:, :-1] = torch.eye(p - 1, dtype=phi.dtype, device=phi.device)
        radius = torch.linalg.eigvals(companion).abs().amax(-1)  # [...]
        if mode == "raise" and bool((radius >= 1).any()):
            raise ValueError(
                f"AR({p}) coefficients are not stationary (largest characteristic root modulus "
                f"{float(radius.max()):.4f} >= 1). For p=1 need |phi| < 1; for p=2 need "
                "|phi2| < 1, phi1 + phi2 < 1, phi2 - phi1 < 1; for p=3 need |phi3| < 1, "
                "phi1 + phi2 + phi3 < 1, phi2 - phi1 - phi3 < 1 and "
                "1 - phi3^2 > |phi2 + phi1 phi3|. Use stationarity='shrink' to rescale instead."
            )
        alpha = (max_root / radius.clamp_min(1e-12)).clamp(max=1.0)  # [...]
        powers = alpha[..., None] ** torch.arange(1, p + 1, dtype=phi.dtype, device=phi.device)
    return phi * powers


def _yule_walker_rho(phi: Tensor, size: int) -> Tensor:
    """Autocorrelations ``rho_0..rho_{size-1}`` of a stationary AR(p): ``[..., p] -> [..., size]``.

    Initial values from the Yule–Walker equations ``rho_k = sum_i phi_i rho_{|k-i|}``:
    ``p=1``: ``rho_1 = phi_1``; ``p=2``: ``rho_1 = phi_1 / (1 - phi_2)`` (paper Eq. 34);
    ``p=3``: ``rho_1 = (phi_1 + phi_2 phi_3) / (1 - phi_2 - phi_1 phi_3 - phi_3^2)``,
    ``rho_2 = phi_2 + (phi_1 + phi_3) rho_1``. Then the recursion
    ``rho_k = sum_{i=1}^p phi_i rho_{k-i}`` (Eq. 35) for ``k >= p``.
    """
    p = phi.shape[-1]
    one = torch.ones_like(phi[..., 0])
    f = phi.unbind(-1)
    if p == 1:
        rho = [one]
    elif p == 2:
        rho = [one, f[0] / (1 - f[1])]
    else:
        rho1 = (f[0] + f[1] * f[2]) / (1 - f[1] - f[0] * f[2] - f[2] ** 2)
        rho = [one, rho1, f[1] + (f[0] + f[2]) * rho1]
    for k in range(len(rho), size):
        rho.append(cast(Tensor, sum(f[i] * rho[k - 1 - i] for i in range(p))))  # p >= 1 terms
    return torch.stack(rho[:size], dim=-1)


def check_ar_args(phi: Tensor, size: int, stationarity: str, max_root: float) -> None:
    """The argument checks of the AR(p) correlations (one ``ValueError`` each)."""
    if phi.dim() < 1 or phi.shape[-1] not in (1, 2, 3):
        raise ValueError(
            f"phi must have shape [..., p] with p in (1, 2, 3); got {tuple(phi.shape)}"
        )
    if size < 1:
        raise ValueError(f"size (D) must be >= 1; got {size}")
    if stationarity not in ("shrink", "raise"):
        raise ValueError(f"stationarity must be 'shrink' or 'raise'; got {stationarity!r}")
    if not 0 < max_root < 1:
        raise ValueError(f"max_root must be in (0, 1); got {max_root}")


def ar_toeplitz_correlation(
    phi: Tensor,
    size: int,
    *,
    jitter: float = 1e-6,
    stationarity: Literal["shrink", "raise"] = "shrink",
    max_root: float = 0.99,
) -> Tensor:
    """AR(p) autocorrelation Toeplitz matrix (spec-gls §7.2): ``phi [..., p] -> C [..., size, size]``.

    ``C[i, j] = rho_{|i-j|}`` from the Yule–Walker equations (see :func:`_yule_walker_rho`),
    plus ``jitter`` on the diagonal. ``p`` in ``{1, 2, 3}``. Negative correlations are allowed.
    Autocorrelations below ``eps^2`` of the dtype in magnitude are set to 0 (no subnormals).

    Stationarity region (all roots of ``z^p - phi_1 z^(p-1) - ... - phi_p`` inside the unit
    circle): ``p=1``: ``|phi| < 1``; ``p=2``: the triangle ``|phi2| < 1, phi2 + phi1 < 1,
    phi2 - phi1 < 1``; ``p=3``: ``|phi3| < 1, phi1 + phi2 + phi3 < 1, phi2 - phi1 - phi3 < 1,
    1 - phi3^2 > |phi2 + phi1 phi3|``. ``tanh``-bounded coefficients are inside for ``p = 1``
    only, so by default (``stationarity="shrink"``) coefficients whose largest root modulus
    exceeds ``max_root`` are rescaled ``phi_i -> alpha^i phi_i`` so that it equals ``max_root``
    (a no-op for stationary enough inputs); ``"raise"`` raises ``ValueError`` instead.
    """
    check_ar_args(phi, size, stationarity, max_root)
    phi = _stationary_phi(phi, max_root, stationarity)
    corr = _toeplitz(_flush_tiny(_yule_walker_rho(phi, size)))
    return corr + jitter * torch.eye(size, dtype=phi.dtype, device=phi.device)


def log_det_corr(corr: Tensor) -> Tensor:
    """``log|C| = 2 sum_i log diag(chol C)_i``: ``[..., D, D] -> [...]``.

    ``log|C| <= 0`` for a correlation matrix (Hadamard); the official code's regulariser
    ``-reg_w * log|C|`` pushes ``C`` toward the identity.
    """
    if corr.dim() < 2 or corr.shape[-1] != corr.shape[-2]:
        raise ValueError(f"corr must have shape [..., D, D]; got {tuple(corr.shape)}")
    tril = safe_cholesky(corr, name="correlation matrix C").tril
    return 2 * tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
