"""ProbCorr: how well the samples reproduce the cross-series correlations (CW-Gen, App. E.2).

Axes: ``B`` windows, ``S`` samples, ``P`` context, ``Q`` horizon, ``N`` series, ``T = P + Q``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import check_forecast, check_history

# Elements per block of ``[windows, samples, max(T, N), N]``: ~2 MB of float32, so that the
# elementwise passes over the correlation matrices run in cache.
_BLOCK_ELEMENTS = 1 << 19


def _correlation(seq: Tensor, keep: Tensor | None, pair_count: Tensor | None) -> Tensor:
    """Lag-0 correlation matrices ``[..., N, N]`` of ``seq [..., T, N]``.

    Each series is standardised by the mean and (ddof 0) standard deviation of its observed
    steps; unobserved steps and constant series contribute 0. Entry ``(i, j)`` is the mean of
    ``z_i z_j`` over the ``pair_count[i, j]`` steps where both series are observed (over all
    ``T`` steps when ``keep`` is None). ``seq`` must already be 0 where unobserved.
    """
    if keep is None:
        count = torch.tensor(float(seq.shape[-2]), dtype=seq.dtype, device=seq.device)
        centred = seq - seq.mean(-2, keepdim=True)
    else:
        count = keep.sum(-2, keepdim=True).clamp_min(1).to(seq.dtype)
        centred = (seq - seq.sum(-2, keepdim=True) / count).mul_(keep)
    std = (centred.square().sum(-2, keepdim=True) / count).sqrt_()
    inv_std = torch.where(std > 0, 1.0 / std, torch.zeros((), dtype=std.dtype, device=std.device))
    if keep is None:  # fold the 1/T of the mean into both factors
        inv_std = inv_std * count.rsqrt()
    z = centred.mul_(inv_std)
    corr = z.transpose(-1, -2) @ z
    return corr if pair_count is None else corr.div_(pair_count)


def prob_corr(
    samples: Tensor,
    target: Tensor,
    past_target: Tensor | None,
    *,
    mask: Tensor | None = None,
    past_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Probabilistic correlation score per window, and which windows have a defined score.

    For window ``b`` let :math:`C(\cdot)` be the lag-0 cross-series correlation matrix of a
    sequence ``[T, N]`` (each series standardised over its own observed steps). With the truth
    sequence :math:`Z = [h; y]` and each sample sequence :math:`Z_s = [h; x_s]` (the history
    ``h`` followed by the horizon),

    .. math::
        \mathrm{ProbCorr}_b = \frac1S\sum_s \frac{1}{|\mathcal P|}\sum_{(i,j)\in\mathcal P}
            \big|C(Z)_{ij} - C(Z_s)_{ij}\big|,

    over the pairs :math:`\mathcal P = \{i < j\}` observed together at least once in the
    horizon (all pairs without a mask). This is CW-Gen's ``cacf_torch`` score (max lag 1, i.e.
    lag 0) made window-local: CW-Gen standardises each series over *all* test windows at once,
    which depends on how windows are batched; here every window is standardised on its own, so
    the metric is a sum over windows. Diagonal pairs are left out (they are identically 1 after
    per-window standardisation). A constant series has correlation 0 with every other.

    Args:
        samples: ``[B, S, Q, N]``.
        target: ``[B, Q, N]``.
        past_target: ``[B, P, N]`` history in the same space as ``target``.
        mask: optional ``[B, Q, N]`` bool for the horizon (applies to samples and truth alike).
        past_mask: optional ``[B, P, N]`` bool for the history.

    Returns:
        ``(score [B], valid [B] bool)``: the score per window and whether it has any pair
        (two series observed at the same horizon step); invalid windows score 0.
    """
    mask = check_forecast(samples, target, mask)
    past_mask = check_history(past_target, past_mask, target, "prob_corr")
    assert past_target is not None  # check_history raised otherwise
    b, s, q, n = samples.shape
    p = past_target.shape[1]
    t = p + q
    dtype, device = samples.dtype, samples.device
    keep = None
    if mask is not None or past_mask is not None:
        m_future = (
            mask if mask is not None else torch.ones(b, q, n, dtype=torch.bool, device=device)
        )
        m_past = (
            past_mask
            if past_mask is not None
            else torch.ones(b, p, n, dtype=torch.bool, device=device)
        )
        keep = torch.cat([m_past, m_future], dim=1)  # [B, T, N]
    zero = torch.zeros((), dtype=dtype, device=device)
    history = past_target.to(dtype)
    if keep is not None:
        history = torch.where(keep[:, :p], history, zero)
        target = torch.where(keep[:, p:], target, zero)
    per_item = max(t, n) * n
    s_step = max(1, min(s, _BLOCK_ELEMENTS // per_item))
    w_step = max(1, _BLOCK_ELEMENTS // (s * per_item)) if s_step == s else 1
    upper = torch.ones(n, n, dtype=torch.bool, device=device).triu_(1)
    scores, valid = [], []
    for b0 in range(0, b, w_step):
        bs = slice(b0, b0 + w_step)
        hist = history[bs]
        nb = hist.shape[0]
        k = None if keep is None else keep[bs]
        pair_count = pair_weight = None
        n_pairs = torch.full((nb,), n * (n - 1) // 2, dtype=dtype, device=device)
        if k is not None:
            kf = k.to(dtype)
            pair_count = kf.transpose(-1, -2) @ kf  # [b, N, N] steps observed by both series
            future = kf[:, p:]
            # a pair counts if both series are observed together somewhere in the horizon
            pair_weight = ((future.transpose(-1, -2) @ future) > 0) & ~torch.eye(
                n, dtype=torch.bool, device=device
            )
            n_pairs = (pair_weight & upper).sum((-2, -1)).to(dtype)
            pair_weight = pair_weight.to(dtype).unsqueeze(1)
            pair_count = pair_count.clamp_min_(1)
        truth = _correlation(torch.cat([hist, target[bs]], dim=1), k, pair_count).unsqueeze(1)
        k_gen = None if k is None else k.unsqueeze(1)
        count_gen = None if pair_count is None else pair_count.unsqueeze(1)
        total = torch.zeros(nb, dtype=dtype, device=device)
        for s0 in range(0, s, s_step):
            xs = samples[bs, s0 : s0 + s_step]
            if k is not None:
                xs = torch.where(k[:, None, p:], xs, zero)
            seq = torch.cat([hist.unsqueeze(1).expand(nb, xs.shape[1], p, n), xs], dim=2)
            diff = _correlation(seq, k_gen, count_gen).sub_(truth).abs_()  # [b, s, N, N], symmetric
            if pair_weight is None:
                off_diagonal = diff.sum((-2, -1)) - diff.diagonal(dim1=-2, dim2=-1).sum(-1)
            else:
                off_diagonal = diff.mul_(pair_weight).sum((-2, -1))
            total += off_diagonal.sum(1) / 2.0
        scores.append(total / (s * n_pairs.clamp_min(1)))
        valid.append(n_pairs > 0)
    if not scores:  # no window
        return samples.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=device)
    return torch.cat(scores), torch.cat(valid)
