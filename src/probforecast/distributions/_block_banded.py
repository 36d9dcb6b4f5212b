"""Cholesky factorisation and solves of symmetric block-banded SPD matrices.

``K [..., D R, D R]`` is given by its ``D`` diagonal blocks ``K_kk [..., D, R, R]`` and its
sub-diagonal blocks ``K_{k, k-j}`` for ``j = 1..p`` (``[..., D, p, R, R]``, index ``[k, j - 1]``;
blocks with ``k < j`` are ignored). Its lower Cholesky factor has the same block bandwidth ``p``:

    L_{k,i} = (K_{k,i} - sum_{m} L_{k,m} L_{i,m}^T) L_{i,i}^{-T}    (k - p <= i < k),
    L_{k,k} = chol(K_kk - sum_{i} L_{k,i} L_{k,i}^T),

``m`` and ``i`` running over the blocks inside the band. That is ``O(D p^2 R^3)`` work instead of
the dense ``O(D^3 R^3)``, in a Python loop over ``D`` blocks of batched ``R x R`` operations
(differentiable by autograd). Each diagonal block's factorisation escalates a jitter through
:func:`~probforecast.distributions._cholesky.safe_cholesky` when it fails.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from probforecast.distributions._cholesky import safe_cholesky


class BlockBandedFactor(NamedTuple):
    """``diag[k] = L_kk [..., R, R]``; ``off[k][j - 1] = L_{k, k-j}`` for ``j = 1..min(k, p)``;
    ``failed`` / ``jittered`` ``[...]``: batch elements whose factorisation failed (identity
    blocks put in; only with ``on_failure="identity"``) or needed a jitter."""

    diag: list[Tensor]
    off: list[list[Tensor]]
    failed: Tensor
    jittered: Tensor

    def logdet(self) -> Tensor:
        """``log|K| = 2 sum_k sum log diag L_kk`` ``[...]``."""
        return 2 * sum(b.diagonal(dim1=-2, dim2=-1).log().sum(-1) for b in self.diag)  # type: ignore[return-value]

    def solve_lower(self, rhs: Tensor) -> Tensor:
        """``L^{-1} u`` for ``u [..., D, R]`` (block forward substitution), ``[..., D, R]``."""
        out: list[Tensor] = []
        for k, tril in enumerate(self.diag):
            value = rhs[..., k, :]
            for j, block in enumerate(self.off[k], start=1):
                value = value - (block @ out[k - j].unsqueeze(-1)).squeeze(-1)
            out.append(_solve(tril, value, upper=False))
        return torch.stack(out, dim=-2)

    def solve_upper(self, rhs: Tensor) -> Tensor:
        """``L^{-T} w`` for ``w [..., D, R]`` (block back substitution), ``[..., D, R]``."""
        size = len(self.diag)
        out: list[Tensor | None] = [None] * size
        for k in reversed(range(size)):
            value = rhs[..., k, :]
            for i in range(k + 1, size):
                j = i - k
                if j > len(self.off[i]):
                    break
                later = out[i]
                assert later is not None
                value = value - (self.off[i][j - 1].mT @ later.unsqueeze(-1)).squeeze(-1)
            out[k] = _solve(self.diag[k].mT, value, upper=True)
        return torch.stack(out, dim=-2)  # type: ignore[arg-type]

    def tail_inverse_factor(self, blocks: int) -> Tensor:
        """``T^{-1}`` for ``T`` the trailing ``blocks x blocks`` block corner of ``L``, as a dense
        lower-triangular ``[..., blocks R, blocks R]``. Because ``L`` is lower triangular, the
        same corner of ``K^{-1} = L^{-T} L^{-1}`` is ``T^{-T} T^{-1}``."""
        size, rank = len(self.diag), self.diag[0].shape[-1]
        start = size - blocks
        rows = []
        for k in range(start, size):
            row = []
            for i in range(start, size):
                j = k - i
                if j == 0:
                    row.append(self.diag[k])
                elif 0 < j <= len(self.off[k]):
                    row.append(self.off[k][j - 1])
                else:
                    row.append(self.diag[k].new_zeros(self.diag[k].shape))
            rows.append(torch.cat(row, dim=-1))
        corner = torch.cat(rows, dim=-2)
        eye = torch.eye(blocks * rank, dtype=corner.dtype, device=corner.device)
        return torch.linalg.solve_triangular(corner, eye.expand_as(corner), upper=False)


def _solve(tril: Tensor, vector: Tensor, *, upper: bool) -> Tensor:
    return torch.linalg.solve_triangular(tril, vector.unsqueeze(-1), upper=upper).squeeze(-1)


def block_banded_cholesky(
    diag_blocks: Tensor,
    off_blocks: Tensor,
    *,
    name: str = "block-banded matrix",
    on_failure: Literal["raise", "identity"] = "raise",
) -> BlockBandedFactor:
    """Lower Cholesky factor of the block-banded ``K`` (see the module docstring).

    Args:
        diag_blocks: ``[..., D, R, R]`` ``K_kk``.
        off_blocks: ``[..., D, p, R, R]``, ``[..., k, j - 1, :, :] = K_{k, k-j}``.
        name: what the matrix is, for the messages of :func:`safe_cholesky`.
        on_failure: as in :func:`safe_cholesky`: raise, or identity blocks and ``failed``.

    Half-precision blocks are factorised in float32 (:func:`safe_cholesky` does it, and type
    promotion carries every later product and solve in float32); the solves return float32.
    """
    size, bandwidth = diag_blocks.shape[-3], off_blocks.shape[-3]
    if off_blocks.shape[-4] != size or off_blocks.shape[-2:] != diag_blocks.shape[-2:]:
        raise ValueError(
            "block_banded_cholesky expects diag_blocks [..., D, R, R] and off_blocks "
            f"[..., D, p, R, R]; got {tuple(diag_blocks.shape)} and {tuple(off_blocks.shape)}"
        )
    diag: list[Tensor] = []
    off: list[list[Tensor]] = []
    failed = jittered = None
    for k in range(size):
        row: dict[int, Tensor] = {}  # column block i -> L_{k,i}
        for i in range(max(0, k - bandwidth), k):
            block = off_blocks[..., k, k - i - 1, :, :]
            for m in range(max(0, k - bandwidth), i):
                if 0 < i - m <= len(off[i]):
                    block = block - row[m] @ off[i][i - m - 1].mT
            row[i] = torch.linalg.solve_triangular(diag[i].mT, block, upper=True, left=False)
        schur = diag_blocks[..., k, :, :]
        for block in row.values():
            schur = schur - block @ block.mT
        result = safe_cholesky(schur, name=name, on_failure=on_failure)
        failed = result.failed if failed is None else failed | result.failed
        jittered = result.jittered if jittered is None else jittered | result.jittered
        diag.append(result.tril)
        off.append([row[k - j] for j in range(1, min(k, bandwidth) + 1)])
    assert failed is not None and jittered is not None
    return BlockBandedFactor(diag, off, failed, jittered)
