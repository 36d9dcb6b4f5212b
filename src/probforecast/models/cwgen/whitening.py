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

``floored_cholesky(Sigma, eps)`` gives the Cholesky factor of the same floored covariance the
symmetric path uses, ``V diag(max(lambda, eps)) V^T``, at the cost of one extra Cholesky per
matrix (``Sigma - eps I``: where it succeeds, ``lambda_min >= eps`` and the floor is inactive)
plus an ``eigh`` of only the matrices whose spectrum reaches below ``eps``.

Precision: every factor product, solve and matrix-vector product runs in float32 (float64
stays float64) with autocast disabled, so half-precision autocast (bf16) does not round the
factors (round trip ``unwhiten(whiten(x))`` off by ~0.03 in bf16 before, ~1e-6 now). Results
are returned in the promoted dtype of ``x`` and ``mu``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probforecast.models.noise import SampleNoise


def _linalg_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 / bfloat16 promote to float32 for the decompositions; float32/64 stay."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _work_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _matvec(a: Tensor, v: Tensor, out_dtype: torch.dtype) -> Tensor:
    """``(a @ v[..., None])[..., 0]`` in float32/64 with autocast off, cast to ``out_dtype``."""
    work = _work_dtype(a, v)
    with torch.autocast(v.device.type, enabled=False):
        out = (a.to(work) @ v.to(work).unsqueeze(-1)).squeeze(-1)
    return out.to(out_dtype)


def floored_cholesky(covariance: Tensor, eps: float) -> Tensor:
    r"""``L [..., N, N]`` lower triangular with ``L L^T = V \mathrm{diag}(\max(\lambda, eps))
    V^T`` for ``covariance [..., N, N] = V diag(lambda) V^T`` (the symmetric path's floor), in
    float32/64 (module docstring). No gradient is needed here (the frozen two-stage prior)."""
    if eps <= 0:
        raise ValueError(f"the eigenvalue floor eps must be > 0; got {eps}")
    work = _linalg_dtype(covariance.dtype)
    with torch.autocast(covariance.device.type, enabled=False):
        sym = 0.5 * (covariance + covariance.transpose(-1, -2)).to(work)
        eye = torch.eye(sym.shape[-1], dtype=work, device=sym.device)
        _, info = torch.linalg.cholesky_ex(sym - eps * eye)  # info 0 <=> lambda_min > eps
        lower, info_full = torch.linalg.cholesky_ex(sym)
        low = (info != 0) | (info_full != 0)
        if low.any():
            lam, vec = torch.linalg.eigh(sym[low])
            floored = (vec * lam.clamp_min(eps).unsqueeze(-2)) @ vec.transpose(-1, -2)
            lower = lower.clone()
            lower[low] = torch.linalg.cholesky(0.5 * (floored + floored.transpose(-1, -2)))
    return lower


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
        """``x = A y + mu`` for ``y [B, ..., Q, N]`` (the product in float32, module docstring)."""
        mu = _expand(self.mu, y)
        out = torch.promote_types(y.dtype, mu.dtype)
        return _matvec(_expand(self.factor, y), y, out) + mu.to(out)

    def sample(self, num_samples: int, noise: SampleNoise | None = None) -> Tensor:
        """``[B, S, Q, N]`` draws of ``mu + A eps``, ``eps ~ N(0, I)`` from ``noise`` (default:
        the global RNG)."""
        b, q, n = self.mu.shape
        noise = SampleNoise.resolve(noise, b)
        eps = noise.randn((b, num_samples, q, n), device=self.mu.device, dtype=self.mu.dtype)
        return self.unwhiten(eps)

    def whiten(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class CholeskyWhitening(Whitening):
    """``A = L`` lower triangular (positive diagonal); ``whiten`` = forward substitution."""

    def whiten(self, x: Tensor) -> Tensor:
        """``y = L^{-1}(x - mu)`` for ``x [B, ..., Q, N]``."""
        mu = _expand(self.mu, x)
        out = torch.promote_types(x.dtype, mu.dtype)
        lower = _expand(self.factor, x)
        work = _work_dtype(x, mu, lower)  # no half-precision triangular solve on CPU
        with torch.autocast(x.device.type, enabled=False):
            centred = x.to(work) - mu.to(work)
            lower = lower.to(work).expand(*centred.shape[:-1], *lower.shape[-2:])
            y = torch.linalg.solve_triangular(lower, centred.unsqueeze(-1), upper=False)
        return y.squeeze(-1).to(out)


class SymmetricWhitening(Whitening):
    """``A = Sigma^{1/2}`` (symmetric, eigenvalues clamped at ``eps``); ``whiten`` uses the
    matching ``Sigma^{-1/2}``. Both factors are kept in float32 (float64 stays float64)."""

    def __init__(self, mu: Tensor, covariance: Tensor, eps: float = 0.1) -> None:
        if eps <= 0:
            raise ValueError(f"the eigenvalue clamp eps must be > 0; got {eps}")
        work = _linalg_dtype(covariance.dtype)
        with torch.autocast(covariance.device.type, enabled=False):  # eigh: float32 or float64
            sym = 0.5 * (covariance + covariance.transpose(-1, -2)).to(work)
            lam, vec = torch.linalg.eigh(sym)  # [B,Q,N], [B,Q,N,N]
            lam = lam.clamp_min(eps)
            half = (vec * lam.sqrt().unsqueeze(-2)) @ vec.transpose(-1, -2)
            self.inv_half = (vec * lam.rsqrt().unsqueeze(-2)) @ vec.transpose(-1, -2)
        super().__init__(mu, half)
        self.eigenvalues = lam

    def whiten(self, x: Tensor) -> Tensor:
        """``y = Sigma^{-1/2}(x - mu)`` for ``x [B, ..., Q, N]`` (float32 product)."""
        mu = _expand(self.mu, x)
        out = torch.promote_types(x.dtype, mu.dtype)
        work = _work_dtype(x, mu)
        return _matvec(_expand(self.inv_half, x), x.to(work) - mu.to(work), out)


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
