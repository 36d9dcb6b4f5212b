"""The AR(p) correlation matrix with its closed-form, banded precision (no ``D x D`` inverse).

For a stationary AR(p) ``x_t = sum_i phi_i x_{t-i} + e_t`` in correlation units (``Var x_t = 1``)
the innovation variance is ``s2 = 1 - sum_i phi_i rho_i`` (``rho`` from Yule–Walker). The density
of ``x_0..x_{D-1}`` factorises as ``N(x_{0:q}; 0, C_q) prod_{t >= q} N(e_t; 0, s2)`` with
``q = min(p, D)`` and ``C_q`` the leading ``q x q`` block of ``C``, so

    C^{-1} = [[C_q^{-1}, 0], [0, 0]] + Phi^T Phi / s2,     log|C| = log|C_q| + (D - q) log s2,

where row ``t - q`` of ``Phi [(D - q), D]`` holds ``1`` at column ``t`` and ``-phi_i`` at column
``t - i``. ``C^{-1}`` is therefore banded with bandwidth ``p``, which makes the GLS capacitance
``C^{-1} ⊗ I_R + blkdiag(M_k)`` block-banded (:mod:`probforecast.distributions._block_banded`):
``O(D p^2 R^3)`` instead of ``O(D^3 R^3)``.

Unlike :func:`~probforecast.distributions.correlation.ar_toeplitz_correlation`, whose dense ``C``
carries a ``1e-6`` diagonal jitter for the Cholesky factorisation, this is the exact AR(p)
correlation (``C_AR``); it needs no jitter, since its precision is known in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from probforecast.distributions.correlation import (
    _flush_tiny,
    _stationary_phi,
    _toeplitz,
    _yule_walker_rho,
    check_ar_args,
)

__all__ = ["ARCorrelation", "ar_correlation"]


@dataclass(frozen=True)
class ARCorrelation:
    """``C [..., D, D]`` of a stationary AR(p) with coefficients ``phi [..., p]`` (already
    stationary: build it with :func:`ar_correlation`), ``D = size``."""

    phi: Tensor
    size: int

    @property
    def order(self) -> int:
        return self.phi.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return self.phi.shape[:-1]

    def shape_stand_in(self) -> Tensor:
        """A zero-stride ``[..., D, D]`` tensor with ``C``'s batch shape, dtype and device: what
        the argument checks of the GLS functions read in place of the matrix."""
        return self.phi.new_zeros(()).expand(*self.batch_shape, self.size, self.size)

    def dense(self, jitter: float = 0.0) -> Tensor:
        """``C [..., D, D]``, ``C[i, j] = rho_{|i - j|}`` (+ ``jitter`` on the diagonal);
        autocorrelations below ``eps^2`` in magnitude are set to 0 (no subnormal numbers)."""
        corr = _toeplitz(_flush_tiny(_yule_walker_rho(self.phi, self.size)))
        eye = torch.eye(self.size, dtype=self.phi.dtype, device=self.phi.device)
        return corr + jitter * eye

    def _head(self) -> tuple[Tensor, Tensor]:
        """``(C_q, s2)``: the leading ``q x q`` block (``q = min(p, D)``) and ``s2 [...]``."""
        q = min(self.order, self.size)
        rho = _yule_walker_rho(self.phi, self.order + 1)  # rho_0..rho_p
        s2 = 1 - (self.phi * rho[..., 1:]).sum(-1)
        return _toeplitz(rho[..., :q]), s2

    def innovation_variance(self) -> Tensor:
        """``s2 = 1 - sum_i phi_i rho_i`` ``[...]``: the variance of ``x_t`` given all its past."""
        return self._head()[1]

    def precision(self) -> Tensor:
        """``C^{-1} [..., D, D]`` in closed form (see the module docstring)."""
        head, s2 = self._head()
        q, d = head.shape[-1], self.size
        coefficients = torch.cat([torch.ones_like(self.phi[..., :1]), -self.phi], dim=-1)
        row_is_innovation = torch.arange(d, device=self.phi.device) >= q
        # phi_full[t, t - i] = a_i on the rows t >= q (a_0 = 1, a_i = -phi_i): D x D, rows < q zero
        phi_full = sum(
            torch.diag_embed(coefficients[..., i : i + 1] * row_is_innovation[i:], offset=-i)
            for i in range(min(self.order, d - 1) + 1)
        )
        assert isinstance(phi_full, Tensor)
        innovations = phi_full.mT @ phi_full / s2[..., None, None]
        head_inverse = torch.cholesky_inverse(torch.linalg.cholesky(head))
        pad = (0, d - q, 0, d - q)
        return innovations + torch.nn.functional.pad(head_inverse, pad)

    def precision_band(self) -> Tensor:
        """The lower band of ``C^{-1}``: ``[..., p + 1, D]``, ``band[..., j, k] = C^{-1}[k, k - j]``
        (0 where ``k < j``)."""
        precision = self.precision()
        return torch.stack(
            [
                torch.nn.functional.pad(precision.diagonal(-j, dim1=-2, dim2=-1), (j, 0))
                if j < self.size
                else precision.new_zeros(precision.shape[:-1])
                for j in range(self.order + 1)
            ],
            dim=-2,
        )

    def logdet(self) -> Tensor:
        """``log|C| = log|C_q| + (D - q) log s2`` ``[...]``."""
        head, s2 = self._head()
        head_logdet = 2 * torch.linalg.cholesky(head).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return head_logdet + (self.size - head.shape[-1]) * s2.log()

    def leading(self, size: int) -> ARCorrelation:
        """The correlation of the first ``size`` positions (the same process)."""
        return ARCorrelation(self.phi, size)

    def split(self, rows: int) -> tuple[ARCorrelation, ...]:
        """Chunks of ``rows`` along the first batch dimension (as ``Tensor.split``)."""
        return tuple(ARCorrelation(phi, self.size) for phi in self.phi.split(rows))


def ar_correlation(
    phi: Tensor,
    size: int,
    *,
    stationarity: Literal["shrink", "raise"] = "shrink",
    max_root: float = 0.99,
) -> ARCorrelation:
    """The AR(p) correlation of ``phi [..., p]`` (``p`` in 1..3) over ``size`` positions, with
    the stationarity handling of
    :func:`~probforecast.distributions.correlation.ar_toeplitz_correlation`."""
    check_ar_args(phi, size, stationarity, max_root)
    return ARCorrelation(_stationary_phi(phi, max_root, stationarity), size)
