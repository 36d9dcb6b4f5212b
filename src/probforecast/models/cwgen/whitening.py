r"""Conditional whitening with a per-horizon-step Gaussian ``N(mu_t, Sigma_t)`` (spec-cwgen §3).

Axes: ``B`` windows, ``Q`` horizon steps, ``N`` series; ``x`` may carry extra axes between
``B`` and ``Q`` (e.g. samples ``S``): ``x [B, ..., Q, N]``, ``mu [B, Q, N]``,
``factor [B, Q, N, N]``. The covariance is block-diagonal over time, so every operation is a
batch of ``N x N`` problems; no ``QN x QN`` matrix is ever built.

Both factorizations satisfy ``Sigma_t = A_t A_t^T``:

* ``SymmetricWhitening``: ``A_t = Sigma_t^{1/2} = V diag(sqrt(max(lambda, eps))) V^T`` from ``eigh``
  (eigenvalues clamped at ``eps`` in both directions, so the covariance actually used is
  ``Sigma_t`` with its spectrum floored at ``eps``);
* ``CholeskyWhitening``: ``A_t = L_t`` lower triangular; whitening is a triangular solve
  (forward substitution), no eigendecomposition, differentiable.

``whiten(x) = A^{-1}(x - mu)`` and ``unwhiten(y) = A y + mu`` always use the same ``A``:
whitened coordinates of the two factorizations differ by an orthogonal rotation.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _linalg_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 / bfloat16 promote to float32 for the decompositions; float32/64 stay."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _expand(param: Tensor, x: Tensor) -> Tensor:
    """Insert singleton axes after ``B`` so ``param [B, Q, N(, N)]`` broadcasts against ``x``."""
    extra = x.dim() - 3
    if extra < 0 or x.shape[0] != param.shape[0] or x.shape[-2:] != param.shape[1:3]:
        raise ValueError(
            f"x must be [B, ..., Q, N] matching the prior's [B, Q, N] = {list(param.shape[:3])}; "
            f"got {list(x.shape)}"
        )
    return param.reshape(param.shape[0], *([1] * extra), *param.shape[1:])


class Whitening:
    """Base: ``mu [B, Q, N]`` and a factor ``A [B, Q, N, N]`` with ``Sigma_t = A_t A_t^T``."""

    def __init__(self, mu: Tensor, factor: Tensor) -> None:
        if mu.dim() != 3 or factor.shape != (*mu.shape, mu.shape[-1]):
            raise ValueError(
                f"mu must be [B, Q, N] and factor [B, Q, N, N]; got {list(mu.shape)} and "
                f"{list(factor.shape)}"
            )
        self.mu, self.factor = mu, factor

    @property
    def covariance(self) -> Tensor:
        """``[B, Q, N, N]`` the covariance this whitening uses, ``A A^T``."""
        return self.factor @ self.factor.transpose(-1, -2)

    def unwhiten(self, y: Tensor) -> Tensor:
        """``x = A y + mu`` for ``y [B, ..., Q, N]``."""
        a = _expand(self.factor, y)
        return (a @ y.unsqueeze(-1)).squeeze(-1) + _expand(self.mu, y)

    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S, Q, N]`` draws of ``mu + A eps``, ``eps ~ N(0, I)``."""
        b, q, n = self.mu.shape
        eps = torch.randn(
            b, num_samples, q, n, generator=generator, device=self.mu.device, dtype=self.mu.dtype
        )
        return self.unwhiten(eps)

    def whiten(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class CholeskyWhitening(Whitening):
    """``A = L`` lower triangular (positive diagonal); ``whiten`` = forward substitution."""

    def whiten(self, x: Tensor) -> Tensor:
        """``y = L^{-1}(x - mu)`` for ``x [B, ..., Q, N]``."""
        centred = x - _expand(self.mu, x)
        lower = _expand(self.factor, x)
        lower = lower.expand(*centred.shape[:-1], *lower.shape[-2:])
        work = _linalg_dtype(centred.dtype)  # no half-precision triangular solve on CPU
        with torch.autocast(centred.device.type, enabled=False):
            y = torch.linalg.solve_triangular(
                lower.to(work), centred.to(work).unsqueeze(-1), upper=False
            ).squeeze(-1)
        return y.to(centred.dtype)


class SymmetricWhitening(Whitening):
    """``A = Sigma^{1/2}`` (symmetric, eigenvalues clamped at ``eps``); ``whiten`` uses the
    matching ``Sigma^{-1/2}``."""

    def __init__(self, mu: Tensor, covariance: Tensor, eps: float = 0.1) -> None:
        if eps <= 0:
            raise ValueError(f"the eigenvalue clamp eps must be > 0; got {eps}")
        sym = 0.5 * (covariance + covariance.transpose(-1, -2))
        with torch.autocast(sym.device.type, enabled=False):  # eigh needs float32 or float64
            lam, vec = torch.linalg.eigh(sym.to(_linalg_dtype(sym.dtype)))  # [B,Q,N], [B,Q,N,N]
        lam, vec = lam.to(sym.dtype), vec.to(sym.dtype)
        lam = lam.clamp_min(eps)
        half = (vec * lam.sqrt().unsqueeze(-2)) @ vec.transpose(-1, -2)
        super().__init__(mu, half)
        self.inv_half = (vec * lam.rsqrt().unsqueeze(-2)) @ vec.transpose(-1, -2)
        self.eigenvalues = lam

    def whiten(self, x: Tensor) -> Tensor:
        """``y = Sigma^{-1/2}(x - mu)`` for ``x [B, ..., Q, N]``."""
        inv = _expand(self.inv_half, x)
        return (inv @ (x - _expand(self.mu, x)).unsqueeze(-1)).squeeze(-1)


class IdentityWhitening(Whitening):
    """The ``standard`` ("Raw") prior ``N(0, I)``: whitening is the identity."""

    def __init__(self, like: Tensor) -> None:
        b, q, n = like.shape
        eye = torch.eye(n, dtype=like.dtype, device=like.device).expand(b, q, n, n)
        super().__init__(torch.zeros_like(like), eye)

    def whiten(self, x: Tensor) -> Tensor:
        return x

    def unwhiten(self, y: Tensor) -> Tensor:
        return y
