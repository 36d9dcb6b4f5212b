"""``safe_cholesky`` directly: the jitter it picks (against dense float64 eigenvalues), the
per-element flags, the exact error and warning texts, half precision and dtypes (issue 19,
surviving mutants of ``_cholesky``)."""

from __future__ import annotations

import logging
import re

import pytest
import torch

from probforecast.distributions import _cholesky
from probforecast.distributions._cholesky import (
    JITTER_LEVELS,
    GLSCholeskyError,
    jitter_counts,
    reset_jitter_counts,
    reset_warning_state,
    safe_cholesky,
)

F64 = torch.float64
LOGGER = "probforecast.distributions._cholesky"


@pytest.fixture
def clock(monkeypatch):
    """A frozen ``time.monotonic`` for the rate limiter; fresh limiter state and counts."""
    monkeypatch.setattr(_cholesky.time, "monotonic", lambda: 5000.0)
    reset_warning_state()
    reset_jitter_counts()
    yield
    reset_warning_state()
    reset_jitter_counts()


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def _nearly_singular(scale, delta):
    """``scale * (ones(2, 2) - delta I)``: smallest eigenvalue ``-scale * delta`` (< 0)."""
    return scale * (torch.ones(2, 2, dtype=F64) - delta * torch.eye(2, dtype=F64))


def _reference_jitter(matrix):
    """The first ``level * mean|diag|`` that makes ``matrix`` positive definite (dense eigvalsh)."""
    mean_diag = float(matrix.diagonal().abs().mean())
    for level in JITTER_LEVELS:
        jitter = level * mean_diag
        if float(torch.linalg.eigvalsh(matrix + jitter * torch.eye(2, dtype=F64))[0]) > 0:
            return jitter
    raise AssertionError("no level works")  # pragma: no cover - the cases are chosen to work


def _unfixable_message(name, count, total, suffix=""):
    return (
        f"{name}: {count} of {total} matrices of shape 2x2 are not positive definite even with "
        f"a diagonal jitter of 0.01 x their mean diagonal{suffix}. Check the inputs (cov_diag "
        "> 0, a valid correlation matrix, finite values)."
    )


@pytest.mark.parametrize(
    ("scale", "delta", "level"),
    [(100.0, 1e-7, 1e-6), (0.01, 1e-7, 1e-6), (1.0, 1e-5, 1e-4), (3.0, 1e-3, 1e-2)],
)
def test_the_first_sufficient_level_times_the_mean_diagonal_is_kept(
    clock, caplog, scale, delta, level
):
    """Guards the jitter escalation: the kept jitter is ``level * mean|diag|`` for the first
    level that works (not ``level / mean``, not stopping after the first level), and the factor
    is that of ``matrix + jitter I``; the warning states the count and the jitter."""
    matrix = _nearly_singular(scale, delta)
    jitter = _reference_jitter(matrix)
    assert jitter == pytest.approx(level * scale * (1 - delta), rel=1e-12)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = safe_cholesky(matrix, name="K")
    expected = matrix + jitter * torch.eye(2, dtype=F64)
    torch.testing.assert_close(result.tril @ result.tril.mT, expected, rtol=1e-12, atol=0)
    assert bool(result.jittered) and not bool(result.failed)
    assert _messages(caplog) == [
        f"K: Cholesky failed for 1 of 1 batch elements; 1 recovered with jitter up to {jitter:.3g}"
    ]
    assert jitter_counts() == {"K": 1}


def test_each_batch_element_gets_its_own_jitter_with_two_batch_dimensions(clock):
    """Guards the per-element bookkeeping over a ``[2, 3]`` batch (flattened with the matrix
    size read from the last dimension): healthy elements get no jitter, each other one the
    level it needs."""
    cases = [(100.0, 1e-7), (1.0, 1e-5), (3.0, 1e-3)]
    batch = torch.eye(2, dtype=F64).repeat(2, 3, 1, 1)
    for (row, col), (scale, delta) in zip([(0, 1), (1, 0), (1, 2)], cases, strict=True):
        batch[row, col] = _nearly_singular(scale, delta)
    result = safe_cholesky(batch, name="batch")
    assert result.jittered.tolist() == [[False, True, False], [True, False, True]]
    assert not result.failed.any()
    for row in range(2):
        for col in range(3):
            matrix = batch[row, col]
            jitter = _reference_jitter(matrix) if result.jittered[row, col] else 0.0
            expected = matrix + jitter * torch.eye(2, dtype=F64)
            got = result.tril[row, col] @ result.tril[row, col].mT
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_a_non_finite_element_does_not_spoil_the_recovery_of_the_others(clock, caplog):
    """Guards the per-element finiteness check of the jittered trials: with ``"identity"`` a NaN
    matrix fails alone, the singular one next to it is still recovered; the warning counts
    both and names the fallback."""
    nan_matrix = torch.tensor([[float("nan"), 0.0], [0.0, 1.0]], dtype=F64)
    batch = torch.stack([nan_matrix, torch.ones(2, 2, dtype=F64)])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = safe_cholesky(batch, name="B", on_failure="identity")
    assert result.failed.tolist() == [True, False]
    assert result.jittered.tolist() == [False, True]
    torch.testing.assert_close(result.tril[0], torch.eye(2, dtype=F64), rtol=0, atol=0)
    expected = torch.ones(2, 2, dtype=F64) + 1e-6 * torch.eye(2, dtype=F64)
    torch.testing.assert_close(result.tril[1] @ result.tril[1].mT, expected, rtol=1e-12, atol=0)
    assert _messages(caplog) == [
        "B: Cholesky failed for 2 of 2 batch elements; 1 recovered with jitter up to 1e-06, "
        "1 replaced by a fallback"
    ]


def test_the_error_message_of_an_unfixable_matrix(clock):
    """Guards the exact GLSCholeskyError text: the default name ``matrix``, the counts, the
    largest jitter level (0.01), and the NaN remark only when the input is not finite."""
    minus_eye = -torch.eye(2, dtype=F64)
    with pytest.raises(
        GLSCholeskyError, match=f"^{re.escape(_unfixable_message('matrix', 1, 1))}$"
    ):
        safe_cholesky(minus_eye)
    batch = torch.stack([minus_eye, torch.eye(2, dtype=F64), minus_eye])
    with pytest.raises(GLSCholeskyError, match=f"^{re.escape(_unfixable_message('C', 2, 3))}$"):
        safe_cholesky(batch, name="C")
    nan_matrix = minus_eye.clone()
    nan_matrix[1, 0] = float("nan")
    suffix = "; the input contains NaN or inf values"
    message = _unfixable_message("C", 1, 1, suffix)
    with pytest.raises(GLSCholeskyError, match=f"^{re.escape(message)}$"):
        safe_cholesky(nan_matrix, name="C")


def test_every_matrix_name_has_its_own_rate_limit(clock, caplog):
    """Guards the rate-limiter key ``jitter:<name>``: two matrices with different names jittered
    at the same moment both warn; a second one with the same name is held back."""
    ones = torch.ones(2, 2, dtype=F64)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        safe_cholesky(ones, name="first")
        safe_cholesky(ones, name="second")
        safe_cholesky(ones, name="first")
    assert [m.split(":")[0] for m in _messages(caplog)] == ["first", "second"]
    assert jitter_counts() == {"first": 2, "second": 1}


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_the_name_and_the_failure_mode(clock, half):
    """Guards the float32 re-call for half-precision input: it keeps the caller's ``name`` and
    ``on_failure`` (raise with the name, or the identity fallback), and returns float32."""
    minus_eye = -torch.eye(2, dtype=half)
    with pytest.raises(GLSCholeskyError, match=f"^{re.escape(_unfixable_message('K', 1, 1))}$"):
        safe_cholesky(minus_eye, name="K")
    result = safe_cholesky(minus_eye, name="K", on_failure="identity")
    assert bool(result.failed) and not bool(result.jittered)
    assert result.tril.dtype == torch.float32
    torch.testing.assert_close(result.tril, torch.eye(2), rtol=0, atol=0)
    recovered = safe_cholesky(torch.ones(2, 2, dtype=half), name="K")
    assert recovered.tril.dtype == torch.float32 and bool(recovered.jittered)
    expected = torch.ones(2, 2) + 1e-6 * torch.eye(2)
    torch.testing.assert_close(recovered.tril @ recovered.tril.mT, expected, rtol=1e-6, atol=0)
    assert jitter_counts() == {"K": 3}


def test_float32_stays_float32_under_a_float64_default_dtype(clock):
    """Guards the dtype of the jitter identity: a float32 matrix that needs a jitter gives a
    float32 factor whatever torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        result = safe_cholesky(torch.ones(2, 2, dtype=torch.float32))
    finally:
        torch.set_default_dtype(old)
    assert result.tril.dtype == torch.float32
    assert bool(result.jittered)
