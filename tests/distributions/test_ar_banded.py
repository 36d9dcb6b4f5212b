"""The AR(p) banded path: closed-form precision, block-banded Cholesky, likelihood and
conditional, each against dense float64 references."""

from __future__ import annotations

import math
import re

import pytest
import torch

from probforecast.distributions import (
    ar_toeplitz_correlation,
    gls_conditional_next,
    gls_covariance_matrix,
    gls_log_prob,
    gls_options,
)
from probforecast.distributions._backend import choose_method
from probforecast.distributions._block_banded import block_banded_cholesky
from probforecast.distributions._cholesky import GLSCholeskyError
from probforecast.distributions.ar_correlation import ARCorrelation, ar_correlation

F64 = torch.float64
SHAPES = [(1, 1), (2, 1), (6, 1), (2, 2), (3, 2), (7, 2), (3, 3), (4, 3), (8, 3)]


def random_phi(order: int, batch: int = 3, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(batch, order, dtype=F64) * 0.6


@pytest.mark.parametrize(("size", "order"), SHAPES)
def test_precision_and_logdet_are_the_dense_inverse_and_log_determinant(size, order):
    ar = ar_correlation(random_phi(order), size)
    corr = ar.dense()
    eye = torch.eye(size, dtype=F64)
    torch.testing.assert_close(ar.precision() @ corr, eye.expand_as(corr), rtol=0, atol=1e-12)
    torch.testing.assert_close(ar.logdet(), torch.linalg.slogdet(corr)[1], rtol=0, atol=1e-12)
    i = torch.arange(size)
    outside = (i[:, None] - i[None, :]).abs() > order
    assert (ar.precision()[..., outside] == 0).all()


@pytest.mark.parametrize(("size", "order"), SHAPES)
def test_precision_band_layout(size, order):
    ar = ar_correlation(random_phi(order), size)
    band, precision = ar.precision_band(), ar.precision()
    assert band.shape == (3, order + 1, size)
    for j in range(order + 1):
        for k in range(size):
            expected = precision[:, k, k - j] if k >= j else torch.zeros(3, dtype=F64)
            torch.testing.assert_close(band[:, j, k], expected, rtol=0, atol=0)


def test_ar1_closed_forms():
    """AR(1): rho_k = phi^k, s2 = 1 - phi^2, C^{-1} tridiagonal with 1/s2, (1 + phi^2)/s2 and
    -phi/s2."""
    phi = torch.tensor([[0.7]], dtype=F64)
    ar = ar_correlation(phi, 5)
    s2 = 1 - 0.49
    assert ar.innovation_variance().item() == pytest.approx(s2, abs=1e-15)
    expected = torch.zeros(5, 5, dtype=F64)
    for k in range(5):
        expected[k, k] = (1 + 0.49) / s2 if 0 < k < 4 else 1 / s2
        if k:
            expected[k, k - 1] = expected[k - 1, k] = -0.7 / s2
    torch.testing.assert_close(ar.precision()[0], expected, rtol=0, atol=1e-12)
    assert ar.logdet().item() == pytest.approx(4 * math.log(s2), abs=1e-12)


def test_dense_matches_the_toeplitz_correlation_and_shrinks_alike():
    phi = torch.tensor([[1.5, -0.2], [0.3, 0.2]], dtype=F64)  # the first is not stationary
    ar = ar_correlation(phi, 6)
    torch.testing.assert_close(ar.dense(1e-6), ar_toeplitz_correlation(phi, 6), rtol=0, atol=0)
    assert not torch.equal(ar.phi[0], phi[0])  # shrunk
    torch.testing.assert_close(ar.phi[1], phi[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="not stationary"):
        ar_correlation(phi, 6, stationarity="raise")
    with pytest.raises(ValueError, match="p in"):
        ar_correlation(torch.zeros(2, 4), 6)


def test_leading_and_split():
    ar = ar_correlation(random_phi(2, batch=5), 6)
    torch.testing.assert_close(ar.leading(4).dense(), ar.dense()[..., :4, :4], rtol=0, atol=0)
    parts = ar.split(2)
    assert [p.phi.shape[0] for p in parts] == [2, 2, 1]
    assert all(p.size == 6 for p in parts)
    torch.testing.assert_close(torch.cat([p.phi for p in parts]), ar.phi, rtol=0, atol=0)


def block_banded_problem(size: int, bandwidth: int, rank: int, seed: int = 0):
    """A random SPD matrix with block bandwidth ``bandwidth`` and its blocks."""
    torch.manual_seed(seed)
    n = size * rank
    a = torch.randn(2, n, n, dtype=F64)
    blocks = (a @ a.mT + n * torch.eye(n, dtype=F64)).reshape(2, size, rank, size, rank)
    blocks = blocks.permute(0, 1, 3, 2, 4).clone()  # [2, D, D, R, R]
    k = torch.arange(size)
    blocks[:, (k[:, None] - k[None, :]).abs() > bandwidth] = 0
    dense = blocks.permute(0, 1, 3, 2, 4).reshape(2, n, n)
    diag = torch.stack([blocks[:, i, i] for i in range(size)], dim=1)
    off = torch.zeros(2, size, bandwidth, rank, rank, dtype=F64)
    for i in range(size):
        for j in range(1, min(i, bandwidth) + 1):
            off[:, i, j - 1] = blocks[:, i, i - j]
    return dense, diag, off


@pytest.mark.parametrize(
    ("size", "bandwidth", "rank"), [(1, 1, 3), (5, 1, 3), (6, 2, 2), (7, 3, 4), (2, 3, 2)]
)
def test_block_banded_cholesky_equals_the_dense_factor(size, bandwidth, rank):
    dense, diag, off = block_banded_problem(size, bandwidth, rank)
    factor = block_banded_cholesky(diag, off)
    tril = torch.linalg.cholesky(dense)
    for k in range(size):
        rows = slice(k * rank, (k + 1) * rank)
        torch.testing.assert_close(factor.diag[k], tril[:, rows, rows], rtol=0, atol=1e-12)
        assert len(factor.off[k]) == min(k, bandwidth)
        for j, block in enumerate(factor.off[k], start=1):
            cols = slice((k - j) * rank, (k - j + 1) * rank)
            torch.testing.assert_close(block, tril[:, rows, cols], rtol=0, atol=1e-12)
    torch.testing.assert_close(factor.logdet(), torch.linalg.slogdet(dense)[1], rtol=0, atol=1e-10)
    u = torch.randn(2, size, rank, dtype=F64)
    w = torch.linalg.solve_triangular(tril, u.reshape(2, -1, 1), upper=False)
    torch.testing.assert_close(factor.solve_lower(u), w.reshape(2, size, rank), rtol=0, atol=1e-12)
    x = torch.linalg.solve(dense, u.reshape(2, -1, 1)).reshape(2, size, rank)
    torch.testing.assert_close(factor.solve_upper(factor.solve_lower(u)), x, rtol=0, atol=1e-12)
    for blocks in range(1, min(size, bandwidth) + 1):
        t_inv = factor.tail_inverse_factor(blocks)
        corner = torch.linalg.inv(dense)[:, -blocks * rank :, -blocks * rank :]
        torch.testing.assert_close(t_inv.mT @ t_inv, corner, rtol=0, atol=1e-12)
    assert not factor.failed.any() and not factor.jittered.any()


def test_block_banded_failures_raise_or_give_identity_blocks():
    _, diag, off = block_banded_problem(4, 1, 2)
    diag = diag.clone()
    diag[1, 2] = -torch.eye(2, dtype=F64) * 1e6  # batch element 1 is not positive definite
    with pytest.raises(GLSCholeskyError, match="test matrix"):
        block_banded_cholesky(diag, off, name="test matrix")
    factor = block_banded_cholesky(diag, off, name="test matrix", on_failure="identity")
    assert factor.failed.tolist() == [False, True]
    torch.testing.assert_close(factor.diag[2][1], torch.eye(2, dtype=F64), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"off_blocks \[..., D, p, R, R\]"):
        block_banded_cholesky(diag, off[:, :3])


def dense_gls_log_prob(value, loc, factor, diag, corr, mask):
    sigma = gls_covariance_matrix(factor, diag, corr)
    out = []
    for i in range(value.shape[0]):
        keep = mask[i].reshape(-1)
        eta = (value[i] - loc[i]).reshape(-1)[keep]
        cov = sigma[i][keep][:, keep]
        out.append(torch.distributions.MultivariateNormal(torch.zeros_like(eta), cov).log_prob(eta))
    return torch.stack(out)


def gls_problem(size, series, rank, order, seed=0):
    torch.manual_seed(seed)
    phi = (torch.randn(3, order, dtype=F64) * 0.6).requires_grad_()
    loc = torch.randn(3, size, series, dtype=F64).requires_grad_()
    factor = (torch.randn(3, size, series, rank, dtype=F64) * 0.5).requires_grad_()
    diag = (torch.rand(3, size, series, dtype=F64) + 0.2).requires_grad_()
    value = torch.randn(3, size, series, dtype=F64)
    mask = torch.rand(3, size, series) > 0.2
    return phi, loc, factor, diag, value, mask


@pytest.mark.parametrize(
    ("size", "series", "rank", "order"), [(6, 4, 3, 1), (5, 2, 3, 2), (7, 5, 2, 3), (2, 3, 2, 3)]
)
def test_banded_log_prob_and_gradients_equal_the_dense_gaussian(size, series, rank, order):
    phi, loc, factor, diag, value, mask = gls_problem(size, series, rank, order)
    inputs = (phi, loc, factor, diag)
    ar = ar_correlation(phi, size)
    banded = gls_log_prob(value, loc, factor, diag, ar, mask=mask)
    reference = dense_gls_log_prob(value, loc, factor, diag, ar.dense(), mask)
    torch.testing.assert_close(banded, reference, rtol=0, atol=1e-10)
    got = torch.autograd.grad(banded.sum(), inputs, retain_graph=True)
    expected = torch.autograd.grad(reference.sum(), inputs, retain_graph=True)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-9)
    for method in ("capacitance", "covariance"):
        with gls_options(method=method):
            dense_way = gls_log_prob(value, loc, factor, diag, ar, mask=mask)
        torch.testing.assert_close(dense_way, reference, rtol=0, atol=1e-10)


def test_banded_log_prob_broadcasts_a_shared_correlation():
    phi, loc, factor, diag, value, mask = gls_problem(6, 3, 2, 2)
    shared = ar_correlation(phi[:1, :].detach().squeeze(0), 6)  # batch (): one C for all
    got = gls_log_prob(value, loc, factor, diag, shared, mask=mask)
    expected = dense_gls_log_prob(value, loc, factor, diag, shared.dense().expand(3, 6, 6), mask)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_method_choice_and_the_banded_method_on_a_dense_matrix():
    assert choose_method(5, 4, 3, banded_precision=True) == "banded"
    assert choose_method(5, 2, 3, banded_precision=True) == "banded"
    assert choose_method(5, 4, 3, "capacitance", banded_precision=True) == "capacitance"
    phi, loc, factor, diag, value, mask = gls_problem(4, 3, 2, 1)
    corr = ar_correlation(phi, 4).dense()
    with (
        gls_options(method="banded"),
        pytest.raises(ValueError, match="needs the correlation as an ARCorrelation"),
    ):
        gls_log_prob(value, loc, factor, diag, corr, mask=mask)
    with pytest.raises(ValueError, match=r"corr \[..., D, D\]"):
        gls_log_prob(value, loc, factor, diag, ARCorrelation(phi, 5), mask=mask)


def dense_conditional(eta_obs, factor_obs, diag_obs, factor_next, diag_next, corr, mask_obs):
    """The next step's Gaussian from the full joint covariance: Schur complement."""
    factor = torch.cat([factor_obs, factor_next[:, None]], dim=1)
    diag = torch.cat([diag_obs, diag_next[:, None]], dim=1)
    sigma = gls_covariance_matrix(factor, diag, corr)
    b = diag_next.shape[-1]
    means, covs = [], []
    for i in range(eta_obs.shape[0]):
        keep = mask_obs[i].reshape(-1)
        s_oo = sigma[i, :-b, :-b][keep][:, keep]
        s_no = sigma[i, -b:, :-b][:, keep]
        gain = torch.linalg.solve(s_oo, s_no.mT).mT
        means.append(gain @ eta_obs[i].reshape(-1)[keep])
        covs.append(sigma[i, -b:, -b:] - gain @ s_no.mT)
    return torch.stack(means), torch.stack(covs)


@pytest.mark.parametrize(
    ("size", "series", "rank", "order"),
    [(6, 4, 3, 1), (5, 2, 3, 2), (7, 5, 2, 3), (2, 3, 2, 1), (3, 3, 2, 3), (4, 3, 2, 3)],
)
def test_banded_conditional_equals_the_schur_complement(size, series, rank, order):
    torch.manual_seed(1)
    ar = ar_correlation(torch.randn(3, order, dtype=F64) * 0.6, size)
    eta = torch.randn(3, size - 1, series, dtype=F64)
    factor = torch.randn(3, size - 1, series, rank, dtype=F64) * 0.5
    diag = torch.rand(3, size - 1, series, dtype=F64) + 0.2
    factor_next = torch.randn(3, series, rank, dtype=F64)
    diag_next = torch.rand(3, series, dtype=F64) + 0.2
    mask = torch.rand(3, size - 1, series) > 0.2
    cond = gls_conditional_next(eta, factor, diag, factor_next, diag_next, ar, mask_obs=mask)
    mean, cov = dense_conditional(eta, factor, diag, factor_next, diag_next, ar.dense(), mask)
    torch.testing.assert_close(cond.loc, mean, rtol=0, atol=1e-10)
    got_cov = cond.cov_factor @ cond.cov_factor.mT + torch.diag_embed(cond.cov_diag)
    torch.testing.assert_close(got_cov, cov, rtol=0, atol=1e-10)
    assert cond.num_fallbacks == 0


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_blocks_are_factorised_in_float32(half):
    dense, diag, off = block_banded_problem(4, 2, 2)
    diag, off = (diag / 8).to(half), (off / 8).to(half)
    factor = block_banded_cholesky(diag, off)
    assert factor.diag[0].dtype == torch.float32
    rounded = block_banded_cholesky(diag.double(), off.double())
    torch.testing.assert_close(factor.logdet().double(), rounded.logdet(), rtol=1e-5, atol=1e-5)
    u = torch.randn(2, 4, 2).to(half)
    solved = factor.solve_upper(factor.solve_lower(u))
    assert solved.dtype == torch.float32
    expected = rounded.solve_upper(rounded.solve_lower(u.double()))
    torch.testing.assert_close(solved.double(), expected, rtol=1e-4, atol=1e-4)


def test_two_batch_dimensions():
    """Batch ``[2, 3]``: the closed forms and the factor read the trailing dimensions only."""
    torch.manual_seed(4)
    ar = ar_correlation(torch.randn(2, 3, 2, dtype=F64) * 0.5, 6)
    corr = ar.dense()
    eye = torch.eye(6, dtype=F64).expand_as(corr)
    torch.testing.assert_close(ar.precision() @ corr, eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(ar.logdet(), torch.linalg.slogdet(corr)[1], rtol=0, atol=1e-12)
    rank = 2
    dense = torch.kron(ar.precision(), torch.eye(rank, dtype=F64)) + 3 * torch.eye(12, dtype=F64)
    band = ar.precision_band()
    eye_r = torch.eye(rank, dtype=F64)
    diag = band[..., 0, :, None, None] * eye_r + 3 * eye_r
    off = band[..., 1:, :].mT[..., None, None] * eye_r
    factor = block_banded_cholesky(diag, off)
    torch.testing.assert_close(factor.logdet(), torch.linalg.slogdet(dense)[1], rtol=0, atol=1e-10)
    t_inv = factor.tail_inverse_factor(2)
    corner = torch.linalg.inv(dense)[..., -4:, -4:]
    torch.testing.assert_close(t_inv.mT @ t_inv, corner, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="block_banded_cholesky expects"):
        block_banded_cholesky(diag, off[..., :1, :])  # R x 1 blocks


def test_the_shape_error_message_and_the_default_name():
    _, diag, off = block_banded_problem(3, 1, 2)
    message = (
        "block_banded_cholesky expects diag_blocks [..., D, R, R] and off_blocks "
        "[..., D, p, R, R]; got (2, 3, 2, 2) and (2, 2, 1, 2, 2)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        block_banded_cholesky(diag, off[:, :2])
    bad = diag.clone()
    bad[0, 1] = -torch.eye(2, dtype=F64) * 1e6
    with pytest.raises(GLSCholeskyError, match="^block-banded matrix: "):
        block_banded_cholesky(bad, off)


def test_failed_and_jittered_flags_collect_every_block():
    """Independent blocks (zero off-diagonal): a failure or a jitter at block 1 of 4 must be
    reported even though the later blocks are healthy."""
    eye = torch.eye(2, dtype=F64)
    diag = eye.repeat(3, 4, 1, 1)
    diag[1, 1] = -eye * 1e6  # element 1 fails at block 1
    diag[2, 1] = torch.ones(2, 2, dtype=F64)  # element 2: singular PSD block, needs a jitter
    off = torch.zeros(3, 4, 1, 2, 2, dtype=F64)
    factor = block_banded_cholesky(diag, off, on_failure="identity")
    assert factor.failed.tolist() == [False, True, False]
    assert factor.jittered.tolist() == [False, False, True]  # a failed element is not "jittered"


def test_a_correlation_batch_that_does_not_broadcast_is_refused():
    """The argument checks read an ``ARCorrelation`` as its ``[..., D, D]`` matrix, batch
    included: phi of batch 5 against inputs of batch 3 is a shape error, not a broadcast."""
    phi, loc, factor, diag, value, mask = gls_problem(4, 3, 2, 1)
    wrong = ar_correlation(torch.zeros(5, 1, dtype=F64), 4)
    assert wrong.shape_stand_in().shape == (5, 4, 4)
    with pytest.raises(ValueError, match=r"corr \(5, 4, 4\)"):
        gls_log_prob(value, loc, factor, diag, wrong, mask=mask)
    with pytest.raises(ValueError, match=r"corr \(5, 4, 4\)"):
        gls_conditional_next(
            value[:, :3], factor[:, :3], diag[:, :3], factor[:, 3], diag[:, 3], wrong
        )
