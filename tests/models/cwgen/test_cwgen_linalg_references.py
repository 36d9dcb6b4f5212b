"""Whitening, floored Cholesky, sliding-window checks, packed factor and the diffusion schedule
against dense float64 references and closed forms (spec-cwgen §3-§5).

Precision contract (whitening module docstring): products and solves run in float32, or float64
when any operand is float64, and results come back in the promoted dtype of ``x`` and ``mu``.
The mixed-precision cases below use factors whose entries are exact in float32 (multiples of
1/8), so a float64 reference is exact and a float32 intermediate shows as an error ~1e-8.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from probforecast.models.cwgen.covariance import lower_factor_from_packed, sliding_covariance
from probforecast.models.cwgen.diffusion import ddim_timesteps, linear_alpha_bars
from probforecast.models.cwgen.whitening import (
    CholeskyWhitening,
    IdentityWhitening,
    SymmetricWhitening,
    _work_dtype,
    floored_cholesky,
)
from probforecast.models.noise import SampleNoise

B, Q, N = 2, 3, 3


def _exact_lower(dtype):
    """``L [B, Q, N, N]`` lower triangular, entries multiples of 1/8 (exact in float32)."""
    g = torch.Generator().manual_seed(0)
    off = torch.randint(-8, 9, (B, Q, N, N), generator=g).tril(-1) / 8.0
    diag = torch.randint(4, 17, (B, Q, N), generator=g) / 8.0
    return (off + torch.diag_embed(diag)).to(dtype)


def _fine(shape, dtype, seed):
    """Values with full float64 precision (not representable in float32)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * math.pi).to(dtype)


def _dense_unwhiten(lower, mu, y):
    return (
        np.einsum("bqij,bsqj->bsqi", lower.double().numpy(), y.double().numpy())
        + (mu.double().numpy()[:, None])
    )


@pytest.mark.parametrize(
    ("factor_dtype", "y_dtype"), [(torch.float64, torch.float32), (torch.float32, torch.float64)]
)
def test_unwhiten_runs_in_float64_when_any_operand_is_float64(factor_dtype, y_dtype):
    lower = _exact_lower(factor_dtype)
    mu = (
        _fine((B, Q, N), torch.float64, 1)
        if factor_dtype == torch.float64
        else (_fine((B, Q, N), torch.float32, 1))
    )
    y = _fine((B, 2, Q, N), y_dtype, 2)
    x = CholeskyWhitening(mu, lower).unwhiten(y)
    assert x.dtype == torch.float64
    np.testing.assert_allclose(x.numpy(), _dense_unwhiten(lower, mu, y), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("wide", ["x", "mu", "factor"])
def test_cholesky_whiten_runs_in_float64_when_any_operand_is_float64(wide):
    dtypes = {k: torch.float64 if k == wide else torch.float32 for k in ("x", "mu", "factor")}
    lower = _exact_lower(dtypes["factor"])
    mu = _fine((B, Q, N), dtypes["mu"], 3)
    x = _fine((B, 2, Q, N), dtypes["x"], 4)
    y = CholeskyWhitening(mu, lower).whiten(x)
    centred = x.double().numpy() - mu.double().numpy()[:, None]
    ref = np.linalg.solve(lower.double().numpy()[:, None], centred[..., None])[..., 0]
    assert y.dtype == (torch.float64 if wide != "factor" else torch.float32)
    if wide == "factor":  # result in float32 (x, mu float32), computed in float64
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6, atol=1e-6)
        # the float64 solve is the float64 reference rounded once to float32
        np.testing.assert_array_equal(y.numpy(), ref.astype(np.float32))
    else:
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wide", ["x", "mu"])
def test_symmetric_whiten_runs_in_float64_when_x_or_mu_is_float64(wide):
    # Sigma = diag(4, 1/4, 1) in float32: Sigma^{-1/2} = diag(1/2, 2, 1), exact
    cov = torch.diag_embed(torch.tensor([4.0, 0.25, 1.0]).expand(B, Q, N))
    mu = _fine((B, Q, N), torch.float64 if wide == "mu" else torch.float32, 5)
    x = _fine((B, Q, N), torch.float64 if wide == "x" else torch.float32, 6)
    y = SymmetricWhitening(mu, cov).whiten(x)
    ref = (x.double() - mu.double()).numpy() * np.array([0.5, 2.0, 1.0])
    assert y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-13, atol=1e-13)


def test_half_precision_inputs_come_back_in_their_dtype():
    lower = _exact_lower(torch.float32)
    mu = _fine((B, Q, N), torch.bfloat16, 7)
    x = _fine((B, Q, N), torch.bfloat16, 8)
    chol = CholeskyWhitening(mu, lower)
    y = chol.whiten(x)
    x_back = chol.unwhiten(y)
    centred = (x.double() - mu.double()).numpy()
    ref = np.linalg.solve(lower.double().numpy(), centred[..., None])[..., 0]
    assert y.dtype == x_back.dtype == torch.bfloat16
    np.testing.assert_allclose(y.double().numpy(), ref, rtol=2e-2, atol=2e-2)
    cov = lower @ lower.transpose(-1, -2)
    sym = SymmetricWhitening(mu, cov)
    assert sym.whiten(x).dtype == sym.unwhiten(x).dtype == torch.bfloat16


def test_symmetric_whiten_centres_half_precision_inputs_in_float32():
    """bf16 ``x - mu`` would round (257.5 -> 258, -257 -> -256); Sigma^{-1/2} then mixes the
    rounded entries. Sigma = V diag(1, 100) V^T, V = [[1, 1], [1, -1]] / sqrt 2, so
    Sigma^{-1/2} = [[0.55, 0.45], [0.45, 0.55]] and y = (25.975, -25.475) in float64."""
    v = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / math.sqrt(2)
    cov = (v @ torch.diag(torch.tensor([1.0, 100.0], dtype=torch.float64)) @ v.T).float()
    x = torch.tensor([258.0, -256.0], dtype=torch.bfloat16).reshape(1, 1, 2)
    mu = torch.tensor([0.5, 1.0], dtype=torch.bfloat16).reshape(1, 1, 2)
    y = SymmetricWhitening(mu, cov.reshape(1, 1, 2, 2)).whiten(x)
    assert y.dtype == torch.bfloat16
    # bf16 spacing is 0.125 in [16, 32): within one spacing of the exact value
    np.testing.assert_allclose(y.double().numpy().ravel(), [25.975, -25.475], atol=0.13)


def test_work_dtype_is_float32_unless_an_operand_is_float64():
    half, single = torch.zeros(1, dtype=torch.bfloat16), torch.zeros(1)
    assert _work_dtype(half, single) == torch.float32
    assert _work_dtype(half, single, torch.zeros(1, dtype=torch.float64)) == torch.float64


def test_sample_is_mu_plus_factor_times_the_given_noise():
    lower = _exact_lower(torch.float64)
    mu = _fine((B, Q, N), torch.float64, 9)
    torch.manual_seed(99)  # the global RNG must not be the source
    draws = CholeskyWhitening(mu, lower).sample(4, SampleNoise.per_window([1, 2]))
    eps = SampleNoise.per_window([1, 2]).randn((B, 4, Q, N), dtype=torch.float64)
    assert draws.shape == (B, 4, Q, N) and draws.dtype == torch.float64
    np.testing.assert_allclose(draws.numpy(), _dense_unwhiten(lower, mu, eps), rtol=1e-13)


def test_identity_whitening_keeps_the_dtype_of_its_template():
    like = torch.randn(B, Q, N, dtype=torch.float64)
    ident = IdentityWhitening(like)
    assert ident.factor.dtype == ident.covariance.dtype == ident.mu.dtype == torch.float64
    assert torch.equal(ident.covariance, torch.eye(N, dtype=torch.float64).expand(B, Q, N, N))
    assert torch.equal(ident.mu, torch.zeros_like(like))


def _asymmetric_spd(batch_shape, seed):
    """``(C, S)``: ``S`` SPD with spectrum in [0.05, ~3], ``C = S + antisymmetric``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*batch_shape, N, N, generator=g, dtype=torch.float64)
    sym = a @ a.transpose(-1, -2) / N + 0.05 * torch.eye(N, dtype=torch.float64)
    skew = torch.randn(*batch_shape, N, N, generator=g, dtype=torch.float64)
    return sym + (skew - skew.transpose(-1, -2)), sym


def _floored(sym, eps):
    lam, vec = np.linalg.eigh(sym)
    return (vec * np.maximum(lam, eps)[..., None, :]) @ np.swapaxes(vec, -1, -2)


def test_symmetric_whitening_uses_the_symmetric_part_and_the_default_floor():
    cov, sym = _asymmetric_spd((B, Q), 10)
    mu = torch.zeros(B, Q, N, dtype=torch.float64)
    white = SymmetricWhitening(mu, cov)  # default eps = lambda_min = 0.1 (spec §3.2)
    lam, vec = np.linalg.eigh(sym.numpy())
    half = (vec * np.sqrt(np.maximum(lam, 0.1))[..., None, :]) @ np.swapaxes(vec, -1, -2)
    np.testing.assert_allclose(white.factor.numpy(), half, atol=1e-10)
    np.testing.assert_allclose(white.eigenvalues.numpy(), np.maximum(lam, 0.1), atol=1e-12)
    assert white.eigenvalues.min() == pytest.approx(0.1)


def test_floored_cholesky_symmetrises_its_input():
    cov, sym = _asymmetric_spd((4,), 11)  # [M, N, N]: one batch axis
    lower = floored_cholesky(cov, 0.1)
    ref = _floored(sym.numpy(), 0.1)
    np.testing.assert_allclose((lower @ lower.transpose(-1, -2)).numpy(), ref, atol=1e-10)
    assert torch.equal(lower, lower.tril())


def test_floored_cholesky_floors_a_small_leading_pivot():
    """diag(0.05, 1) floored at 0.1 is diag(0.1, 1): the first pivot alone is below eps."""
    cov = torch.diag(torch.tensor([0.05, 1.0], dtype=torch.float64)).reshape(1, 2, 2)
    lower = floored_cholesky(cov, 0.1)
    np.testing.assert_allclose(lower[0].numpy(), np.diag([math.sqrt(0.1), 1.0]), atol=1e-12)


def test_floored_cholesky_promotes_half_precision_and_rejects_a_zero_floor():
    cov, sym = _asymmetric_spd((2,), 12)
    lower = floored_cholesky(cov.to(torch.bfloat16), 0.1)
    assert lower.dtype == torch.float32
    ref = _floored(sym.to(torch.bfloat16).double().numpy(), 0.1)  # ~ bf16-rounded input
    np.testing.assert_allclose((lower @ lower.transpose(-1, -2)).numpy(), ref, atol=0.05)
    with pytest.raises(ValueError, match="eps must be > 0; got 0"):
        floored_cholesky(sym, 0.0)


def test_whitening_rejects_a_history_without_the_window_axis():
    mu = torch.zeros(Q, Q, N)  # B == Q, so [Q, N] matches the trailing axes
    white = CholeskyWhitening(mu, torch.eye(N).expand(Q, Q, N, N))
    with pytest.raises(ValueError, match=r"x must be \[B, \.\.\., Q, N\]"):
        white.whiten(torch.zeros(Q, N))


# ---------------------------------------------------------------- sliding-window checks


def test_sliding_covariance_window_must_be_a_positive_integer():
    x = torch.randn(1, 8, 2)
    for bad in (0, -3, 2.0):
        with pytest.raises(ValueError, match="must be a positive integer"):
            sliding_covariance(x, bad)
    # W = 1: every window holds one point, the biased covariance is exactly 0
    assert torch.equal(sliding_covariance(x, 1), torch.zeros(1, 8, 2, 2))


def test_sliding_covariance_largest_window_and_message():
    length = 4
    x = torch.randn(1, length, 2, dtype=torch.float64)
    sliding_covariance(x, 2 * length - 1)  # the largest window reflect padding allows
    for window in (2 * length, 2 * length + 1):
        with pytest.raises(
            ValueError,
            match=r"window // 2 < the segment length T = 4; got window=\d+ "
            r"\(use a window of at most 7\)$",
        ):
            sliding_covariance(x, window)


# ---------------------------------------------------------------- packed factor, schedule


def test_packed_factor_adds_min_diag_after_the_softplus():
    d = 3
    packed = torch.randn(2, 6, dtype=torch.float64)
    lower = lower_factor_from_packed(packed, d, min_diag=0.5)
    rows, cols = np.triu_indices(d)
    upper = np.zeros((2, d, d))
    values = packed.numpy().copy()
    diag = rows == cols
    values[:, diag] = np.log1p(np.exp(values[:, diag])) + 0.5
    upper[:, rows, cols] = values
    np.testing.assert_allclose(lower.numpy(), np.swapaxes(upper, -1, -2), rtol=1e-12)
    assert torch.allclose(F.softplus(packed[:, 0]) + 0.5, lower[:, 0, 0])
    with pytest.raises(ValueError, match="expected 3 packed entries for D=2; got 5$"):
        lower_factor_from_packed(torch.zeros(4, 2, 5), 2)


def test_linear_schedule_edges():
    abar = linear_alpha_bars(2, 1e-4, 0.02)  # the smallest schedule
    np.testing.assert_allclose(abar.numpy(), [1 - 1e-4, (1 - 1e-4) * (1 - 0.02)], rtol=1e-15)
    const = linear_alpha_bars(5, 0.01, 0.01)  # beta_start == beta_end: constant beta
    np.testing.assert_allclose(const.numpy(), 0.99 ** np.arange(1, 6), rtol=1e-14)
    for steps, start, end in ((1, 1e-4, 0.02), (10, 0.0, 0.02), (10, 1e-4, 1.0), (10, 0.2, 0.1)):
        with pytest.raises(ValueError, match="need diffusion_steps >= 2"):
            linear_alpha_bars(steps, start, end)
    assert ddim_timesteps(10, 1) == [9]
    with pytest.raises(ValueError, match="sampling_steps must be in"):
        ddim_timesteps(10, 0)
