"""Batched Cholesky with jitter escalation, shared by the GLS likelihood and its conditional.

``torch.linalg.cholesky`` either succeeds for the whole batch or raises; in float32 training a
single ill-conditioned window (an SE kernel with a tiny identity weight, a capacitance with a
tiny ``d``) would then stop the run, and an unchecked decomposition would silently give NaN.
:func:`safe_cholesky` factorises the batch with ``torch.linalg.cholesky_ex``, retries only the
failing batch elements with an escalating diagonal jitter *relative to their mean diagonal*,
and reports what it did, so the caller can either raise (:class:`GLSCholeskyError`) or fall
back per element. Every fallback is logged (rate-limited), never silent.
"""

from __future__ import annotations

import logging
import time
from typing import Literal, NamedTuple

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: Jitter levels tried in turn on failing elements, relative to the mean of their diagonal.
JITTER_LEVELS: tuple[float, ...] = (1e-6, 1e-4, 1e-2)

_WARN_INTERVAL_S = 60.0
_warn_state: dict[str, tuple[float, int]] = {}  # key -> (time of last warning, suppressed count)
_jitter_counts: dict[str, int] = {}  # matrix name -> batch elements that needed jitter/fallback


def jitter_counts() -> dict[str, int]:
    """Batch elements that needed a jitter (or a fallback) since the last reset, per matrix
    name; ``ForecastModule`` logs their total every epoch (``<stage>/diagnostics/cholesky_jitter``)."""
    return dict(_jitter_counts)


def reset_jitter_counts() -> None:
    _jitter_counts.clear()


class GLSCholeskyError(torch.linalg.LinAlgError):
    """A matrix of the GLS likelihood is not positive definite even with the largest jitter."""


class CholeskyResult(NamedTuple):
    """``tril [..., n, n]``; ``jittered [...]`` and ``failed [...]`` bool masks over the batch.

    ``jittered``: the element needed a diagonal jitter (its ``tril`` factorises
    ``matrix + jitter I``). ``failed``: even ``JITTER_LEVELS[-1]`` did not help; with
    ``on_failure="identity"`` its ``tril`` is the identity and the caller must replace the result.
    """

    tril: Tensor
    jittered: Tensor
    failed: Tensor


def warn_rate_limited(key: str, message: str) -> None:
    """``logger.warning(message)`` at most once per minute per ``key``; counts what it held back."""
    now = time.monotonic()
    last, suppressed = _warn_state.get(key, (-float("inf"), 0))
    if now - last < _WARN_INTERVAL_S:
        _warn_state[key] = (last, suppressed + 1)
        return
    if suppressed:
        message = f"{message} ({suppressed} similar warnings suppressed in the last minute)"
    logger.warning(message)
    _warn_state[key] = (now, 0)


def reset_warning_state() -> None:
    """Forget the rate limiter's history (tests use it to see every warning)."""
    _warn_state.clear()


def safe_cholesky(
    matrix: Tensor,
    *,
    name: str = "matrix",
    on_failure: Literal["raise", "identity"] = "raise",
) -> CholeskyResult:
    """Lower Cholesky factor of a batch of SPD matrices ``[..., n, n]``, escalating jitter.

    For each batch element that ``cholesky_ex`` rejects, the jitters
    ``level * mean(|diag(matrix)|)`` for ``level`` in :data:`JITTER_LEVELS` are tried in turn
    and the first that works is kept; the factor is then recomputed in one differentiable call on
    ``matrix + diag(jitter)`` (``jitter = 0`` for healthy elements), so gradients never pass
    through a failed decomposition. Elements that still fail raise :class:`GLSCholeskyError`
    (``on_failure="raise"``) or get an identity factor and ``failed=True``
    (``on_failure="identity"``).

    Half-precision input (bf16/fp16, e.g. under autocast) is factorised in float32 with
    autocast off (no half-precision Cholesky kernel exists on CPU, and its accuracy would be
    useless); the factor is returned in float32.

    Args:
        matrix: ``[..., n, n]`` symmetric matrices.
        name: what the matrix is, for the messages.
        on_failure: see above.
    """
    if matrix.dtype in (torch.float16, torch.bfloat16):
        with torch.autocast(matrix.device.type, enabled=False):
            return safe_cholesky(matrix.float(), name=name, on_failure=on_failure)
    tril, info = torch.linalg.cholesky_ex(matrix)
    bad = info != 0
    if not bool(bad.any()):
        return CholeskyResult(tril, bad, bad)

    n = matrix.shape[-1]
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    with torch.no_grad():
        flat = matrix.detach().reshape(-1, n, n)
        pending = bad.reshape(-1).clone()
        scale = flat.diagonal(dim1=-2, dim2=-1).abs().mean(-1)
        jitter = torch.zeros_like(scale)
        for level in JITTER_LEVELS:
            idx = pending.nonzero().squeeze(-1)
            trial = flat[idx] + (level * scale[idx])[:, None, None] * eye
            _, trial_info = torch.linalg.cholesky_ex(trial)
            ok = (trial_info == 0) & torch.isfinite(trial).all(dim=(-2, -1))
            jitter[idx[ok]] = level * scale[idx[ok]]
            pending[idx[ok]] = False
            if not bool(pending.any()):
                break
        failed = pending.reshape(bad.shape)
        jitter = jitter.reshape(bad.shape)

    num_bad, num_failed = int(bad.sum()), int(failed.sum())
    _jitter_counts[name] = _jitter_counts.get(name, 0) + num_bad
    if num_failed and on_failure == "raise":
        finite = bool(torch.isfinite(matrix).all())
        raise GLSCholeskyError(
            f"{name}: {num_failed} of {bad.numel()} matrices of shape {n}x{n} are not positive "
            f"definite even with a diagonal jitter of {JITTER_LEVELS[-1]:g} x their mean diagonal"
            + ("" if finite else "; the input contains NaN or inf values")
            + ". Check the inputs (cov_diag > 0, a valid correlation matrix, finite values)."
        )
    warn_rate_limited(
        f"jitter:{name}",
        f"{name}: Cholesky failed for {num_bad} of {bad.numel()} batch elements; "
        f"{num_bad - num_failed} recovered with jitter up to "
        f"{float(jitter.max()):.3g}"
        + (f", {num_failed} replaced by a fallback" if num_failed else ""),
    )
    fixed = matrix + jitter[..., None, None] * eye
    if num_failed:
        fixed = torch.where(failed[..., None, None], eye, fixed)
    tril = torch.linalg.cholesky(fixed)
    return CholeskyResult(tril, bad & ~failed, failed)
