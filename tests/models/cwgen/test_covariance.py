"""sliding_covariance vs a naive numpy loop; the Cholesky head; triu packing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.models.cwgen import lower_factor_from_packed, sliding_covariance, triu_pack
from probforecast.models.cwgen.covariance import num_packed


def naive_sliding_cov(x: np.ndarray, window: int) -> np.ndarray:
    """Explicit reflect-padded centred windows and np.cov(bias=True), one step at a time."""
    t, d = x.shape
    left = window // 2
    right = window - 1 - left
    padded = np.pad(x, ((left, right), (0, 0)), mode="reflect")
    out = np.empty((t, d, d))
    for i in range(t):
        out[i] = np.cov(padded[i : i + window].T, bias=True)
    return out


@pytest.mark.parametrize(("window", "length"), [(15, 36), (15, 168), (95, 168), (95, 192), (4, 9)])
def test_sliding_covariance_equals_naive_loop(window, length):
    rng = np.random.default_rng(window + length)
    x = (
        rng.normal(size=(2, length, 3)) * np.array([1.0, 3.0, 0.5])
        + np.linspace(0, 4, length)[:, None]
    )
    got = sliding_covariance(torch.from_numpy(x), window).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], naive_sliding_cov(x[b], window), atol=1e-10)
    got32 = sliding_covariance(torch.from_numpy(x).float(), window).numpy()
    np.testing.assert_allclose(got32, got, atol=1e-4)
    assert np.allclose(got, np.swapaxes(got, -1, -2))
    assert np.linalg.eigvalsh(got).min() > -1e-9


def test_sliding_covariance_rejects_bad_input():
    with pytest.raises(ValueError, match="window // 2"):
        sliding_covariance(torch.zeros(1, 10, 2), 21)
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
        sliding_covariance(torch.zeros(10, 2), 3)


def test_triu_packing_order_and_roundtrip():
    m = torch.arange(16.0).reshape(4, 4)
    packed = triu_pack(m)
    rows, cols = np.triu_indices(4)
    assert packed.tolist() == m.numpy()[rows, cols].tolist()
    lower = lower_factor_from_packed(torch.randn(2, 3, num_packed(4)), 4)
    # packing the transposed factor (upper U) gives back the off-diagonal raw entries
    raw = torch.randn(5, num_packed(4))
    u = lower_factor_from_packed(raw, 4).transpose(-1, -2)
    off = rows != cols
    assert torch.equal(triu_pack(u)[:, torch.from_numpy(off)], raw[:, torch.from_numpy(off)])
    assert torch.allclose(
        torch.diagonal(u, dim1=-2, dim2=-1),
        torch.nn.functional.softplus(raw[:, ~torch.from_numpy(off)]),
    )
    assert torch.equal(lower, lower.tril())


def test_cholesky_head_gives_spd_matrices():
    torch.manual_seed(0)
    raw = torch.randn(200, num_packed(6), dtype=torch.float64)
    lower = lower_factor_from_packed(raw, 6)
    sigma = lower @ lower.transpose(-1, -2)
    assert torch.allclose(sigma, sigma.transpose(-1, -2))
    assert torch.linalg.eigvalsh(sigma).min() > 0
    # det Sigma = prod(diag L)^2 > 0 even for very negative raw diagonal entries
    tiny = lower_factor_from_packed(torch.full((1, num_packed(6)), -30.0, dtype=torch.float64), 6)
    assert torch.diagonal(tiny, dim1=-2, dim2=-1).min() > 0
    # L is the Cholesky factor of Sigma (positive diagonal, lower triangular)
    assert torch.allclose(torch.linalg.cholesky(sigma), lower, atol=1e-8)
    with pytest.raises(ValueError, match="packed entries"):
        lower_factor_from_packed(raw[:, :-1], 6)
