"""Sliding-window covariances and the packed upper-triangular covariance factor (spec-cwgen §4.2-4.3).

Axes: ``B`` windows, ``T`` time steps of one segment, ``D`` variables (series).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def _check_window(window: int, length: int, what: str = "the segment length T") -> None:
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"the covariance window must be a positive integer; got {window!r}")
    if window // 2 >= length:
        raise ValueError(
            f"reflect padding needs window // 2 < {what} = {length}; got window={window} "
            f"(use a window of at most {2 * length - 1})"
        )


def sliding_covariance(x: Tensor, window: int) -> Tensor:
    r"""Centred sliding-window covariance inside the segment ``x [B, T, D] -> [B, T, D, D]``.

    With ``p_l = window // 2`` and ``p_r = window - 1 - p_l`` the segment is reflect-padded to
    ``x'`` (``x'_{-k} = x_k``, ``x'_{T-1+k} = x_{T-1-k}``) and, for every step ``t``,

    .. math::
        m_t = \frac1W \sum_{s=t-p_l}^{t+p_r} x'_s, \qquad
        \Sigma^{sw}_t = \frac1W \sum_{s=t-p_l}^{t+p_r} x'_s x_s'^\top - m_t m_t^\top

    (biased ``1/W`` normalisation, as ``numpy.cov(..., bias=True)`` of the window). This is the
    JMCE covariance target (on the future) and input feature (on the history).
    """
    if x.dim() != 3:
        raise ValueError(f"sliding_covariance expects x of shape [B, T, D]; got {tuple(x.shape)}")
    b, t, d = x.shape
    _check_window(window, t)
    left = window // 2
    right = window - 1 - left
    xp = F.pad(rearrange(x, "b t d -> b d t"), (left, right), mode="reflect")  # [B, D, T+W-1]
    outer = torch.einsum("bit,bjt->bijt", xp, xp).reshape(b, d * d, -1)  # [B, D*D, T+W-1]
    # windowed means: average pooling with kernel W, stride 1 (a depthwise conv with ones / W)
    means = F.avg_pool1d(torch.cat([xp, outer], dim=1), window, stride=1)  # [B, D + D*D, T]
    m = rearrange(means[:, :d], "b d t -> b t d")
    s2 = rearrange(means[:, d:], "b (i j) t -> b t i j", i=d)
    cov = s2 - m.unsqueeze(-1) * m.unsqueeze(-2)
    return 0.5 * (cov + cov.transpose(-1, -2))


def triu_pack(matrix: Tensor) -> Tensor:
    """``[..., D, D] -> [..., D(D+1)/2]``: the upper triangle in ``torch.triu_indices`` (row-major)
    order."""
    d = matrix.shape[-1]
    rows, cols = torch.triu_indices(d, d, device=matrix.device)
    return matrix[..., rows, cols]


def num_packed(d: int) -> int:
    """Number of upper-triangular entries of a ``d x d`` matrix."""
    return d * (d + 1) // 2


def lower_factor_from_packed(packed: Tensor, d: int, min_diag: float = 0.0) -> Tensor:
    r"""``[..., D(D+1)/2] -> L [..., D, D]`` lower triangular with a positive diagonal.

    The packed entries fill an upper-triangular ``U`` (row-major ``triu_indices`` order), whose
    diagonal goes through ``softplus(.) + min_diag``; ``L = U^T``, so
    :math:`\hat\Sigma = U^\top U = L L^\top \succ 0` (the JMCE covariance head, spec §4.3).
    """
    if packed.shape[-1] != num_packed(d):
        raise ValueError(
            f"expected {num_packed(d)} packed entries for D={d}; got {packed.shape[-1]}"
        )
    rows, cols = torch.triu_indices(d, d, device=packed.device)
    diag = rows == cols
    values = torch.where(diag, F.softplus(packed) + min_diag, packed)
    upper = packed.new_zeros(*packed.shape[:-1], d, d)
    upper[..., rows, cols] = values
    return upper.transpose(-1, -2)
