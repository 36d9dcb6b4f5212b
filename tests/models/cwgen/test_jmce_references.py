"""JMCE: the loss (spec-cwgen §4.4, official ``joint_loss_fn``) of a given estimate against a numpy
reference, the de-normalised head, the stored-arguments state and the dashboard figure.

Loss reference (spec §4.4): ``mean((mu - X)^2 | observed) + mean(svdvals(Sigma - S))
+ lambda_min sqrt(QN) mean((Sigma - S)^2) + w_eig mean(relu(lambda_min - eig(sym(Sigma))))``,
``S`` the centred, reflect-padded, biased (1/W) sliding covariance of the future, here a naive
numpy loop over windows (``numpy.cov(..., bias=True)``).
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from probforecast.models import JMCE
from probforecast.models.cwgen import jmce_loss
from tests.models.cwgen._helpers import SMALL_JMCE, F, N, P, Q, facts, random_batch

K = N * (N + 1) // 2


def _naive_sliding_cov(x: np.ndarray, window: int) -> np.ndarray:
    """``x [B, T, D] -> [B, T, D, D]``: numpy.cov(bias=True) of each reflect-padded window."""
    left = window // 2
    right = window - 1 - left
    pad = np.pad(x, ((0, 0), (left, right), (0, 0)), mode="reflect")
    b, t, _ = x.shape
    return np.stack(
        [
            np.stack([np.cov(pad[i, s : s + window].T, bias=True) for s in range(t)])
            for i in range(b)
        ]
    )


def _reference_loss(mu, cov, target, target_cov, lam, w_eig, mask, penalty=True):
    m = mask.astype(float)
    mean = ((mu - target) ** 2 * m).sum() / max(m.sum(), 1.0)
    diff = cov - target_cov
    nuclear = np.linalg.svd(diff, compute_uv=False).mean()
    frob = (diff**2).mean()
    eig = np.linalg.eigvalsh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    pen = np.maximum(lam - eig, 0).mean() if penalty else 0.0
    q, n = target.shape[-2:]
    return mean + nuclear + lam * math.sqrt(q * n) * frob + w_eig * pen, pen


def _estimate(b, seed):
    """A hand-made ``(mu, L, Sigma)`` whose Sigma has eigenvalues below 0.2."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, Q, N, generator=g)
    lower = torch.randn(b, Q, N, N, generator=g).tril() * 0.3
    return mu, lower, lower @ lower.transpose(-1, -2)


@pytest.mark.parametrize("high_dim", [False, True])
def test_loss_parts_of_a_given_estimate_match_numpy(high_dim):
    lam, w_eig, window = 0.2, 7.0, 3
    batch = random_batch(b=3, seed=4)
    observed = torch.ones(3, Q, N, dtype=torch.bool)
    observed[0, :5] = False
    observed[2, :, 1] = False
    batch = dataclasses.replace(batch, future_observed=observed)
    model = JMCE(
        **facts(), cov_window=window, lambda_min=lam, w_eig=w_eig, high_dim=high_dim, **SMALL_JMCE
    )
    mu, lower, cov = _estimate(3, 5)
    parts = model.loss_parts(batch, (mu, lower, cov))
    target_cov = _naive_sliding_cov(batch.future_target.double().numpy(), window)
    total, pen = _reference_loss(
        mu.double().numpy(),
        cov.double().numpy(),
        batch.future_target.double().numpy(),
        target_cov,
        lam,
        w_eig,
        observed.numpy(),
        penalty=not high_dim,
    )
    assert (pen > 0.01) != high_dim  # the estimate does violate the floor
    np.testing.assert_allclose(parts.penalty.item(), pen, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(parts.total.item(), total, rtol=1e-5)


def test_penalty_uses_the_symmetric_part_of_the_covariance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, N, N, generator=g, dtype=torch.float64)
    cov = a @ a.transpose(-1, -2) * 0.05 + 5.0 * (a - a.transpose(-1, -2))  # sym part ~ small
    mu = torch.zeros(2, 3, N, dtype=torch.float64)
    parts = jmce_loss(mu, cov, mu, cov, lambda_min=0.1, w_eig=50.0)
    sym = 0.5 * (cov + cov.transpose(-1, -2)).numpy()
    expected = np.maximum(0.1 - np.linalg.eigvalsh(sym), 0).mean()
    assert expected > 0.01
    np.testing.assert_allclose(parts.penalty.item(), expected, rtol=1e-12)
    off = jmce_loss(mu, cov, mu, cov, eig_penalty=False)
    assert off.penalty.dtype == torch.float64 and off.penalty.item() == 0.0


class _StubBackbone(nn.Module):
    """Returns fixed ``(out [B, Q, N + K], mean [B, 1, N + K], std [B, 1, N + K])``."""

    def __init__(self, out, mean, std):
        super().__init__()
        self.result = (out, mean, std)

    def forward(self, x_enc, marks_enc, marks_dec):
        return self.result


@pytest.mark.parametrize("high_dim", [False, True])
def test_estimate_de_normalises_the_mean_channels_only(high_dim):
    b, lam = 2, 0.3
    g = torch.Generator().manual_seed(1)
    out = torch.randn(b, Q, N + K, generator=g, dtype=torch.float64)
    mean = torch.randn(b, 1, N + K, generator=g, dtype=torch.float64) * 3
    std = torch.rand(b, 1, N + K, generator=g, dtype=torch.float64) + 0.5
    model = JMCE(**facts(), cov_window=7, lambda_min=lam, high_dim=high_dim, **SMALL_JMCE)
    model.backbone = _StubBackbone(out, mean, std)
    batch = random_batch(b=b)
    batch = dataclasses.replace(batch, past_target=batch.past_target.double())
    mu, lower, cov = model.estimate(batch)
    o, mn, sd = out.numpy(), mean.numpy(), std.numpy()
    np.testing.assert_allclose(mu.numpy(), o[..., :N] * sd[..., :N] + mn[..., :N], rtol=1e-14)
    rows, cols = np.triu_indices(N)
    upper = np.zeros((b, Q, N, N))
    vals = o[..., N:].copy()
    vals[..., rows == cols] = np.log1p(np.exp(vals[..., rows == cols]))  # softplus diagonal
    upper[..., rows, cols] = vals
    sigma = np.swapaxes(upper, -1, -2) @ upper  # U^T U
    if high_dim:
        sigma = sigma + lam * np.eye(N)
    np.testing.assert_allclose(cov.numpy(), sigma, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((lower @ lower.transpose(-1, -2)).numpy(), sigma, atol=1e-12)
    assert torch.equal(lower, lower.tril())


def test_extra_state_without_a_config_is_accepted_and_a_wrong_one_refused():
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    model.set_extra_state(None)  # not a dict: nothing to check
    model.set_extra_state({})  # a dict without jmce_config
    model.set_extra_state({"jmce_config": dict(model.config, dropout=0.5)})  # training-only
    with pytest.raises(ValueError, match="cov_window: 5 in the checkpoint, 7 here"):
        model.set_extra_state({"jmce_config": dict(model.config, cov_window=5)})


def test_check_config_message_names_the_source_and_the_fix():
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    fix = (
        r"; set the JMCE arguments \(for CW-Diff / CW-Flow: the fields of jmce, and the "
        r"data's lengths\) to the JMCE run's values$"
    )
    with pytest.raises(
        ValueError,
        match=r"^the checkpoint holds a JMCE trained with other sizes or settings \("
        r"d_model: 8 in the checkpoint, 16 here; high_dim: True in the checkpoint, False here\)"
        + fix,
    ):
        model.check_config(dict(model.config, d_model=8, high_dim=True))
    with pytest.raises(ValueError, match=r"^my file holds a JMCE"):
        model.check_config(dict(model.config, label_len=3), "my file")
    model.check_config(dict(model.config))  # identical: accepted


def test_load_state_dict_reports_unexpected_keys_and_marks_weights_loaded():
    source = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    assert model.weights_loaded is False
    state = dict(source.state_dict(), stray=torch.zeros(1))
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"stray\""):
        model.load_state_dict(state)
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == ["stray"] and result.missing_keys == []
    assert model.weights_loaded is True
    for k, v in source.state_dict().items():
        if k != "_extra_state":
            assert torch.equal(model.state_dict()[k], v)


def test_diagnostic_figure_shows_sigma_hat_at_the_first_and_last_step():
    torch.manual_seed(0)
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE).eval()
    batch = random_batch(b=2)
    figures = model.diagnostic_figures(batch)  # grad mode: the view must not need no_grad
    assert list(figures) == ["jmce_sigma"]
    fig = figures["jmce_sigma"]
    try:
        with torch.no_grad():
            _, _, cov = model.estimate(batch)
        expected = cov[0].numpy()
        panels = [ax for ax in fig.axes if ax.images]
        assert len(panels) == 2
        for ax, step in zip(panels, (0, Q - 1), strict=True):
            np.testing.assert_allclose(ax.images[0].get_array(), expected[step], rtol=1e-6)
        assert [ax.get_title() for ax in panels] == [
            "Sigma-hat, horizon step 1",
            f"Sigma-hat, horizon step {Q}",
        ]
        assert fig._suptitle is not None and fig._suptitle.get_text() == "JMCE covariance"
        # symmetric colour scale: centred on 0, diverging map
        image = panels[0].images[0]
        vmin, vmax = image.get_clim()
        assert vmin == -vmax and vmax == pytest.approx(np.abs(expected[[0, Q - 1]]).max())
        assert image.get_cmap().name == "RdBu_r"
    finally:
        plt.close(fig)


def test_time_features_reach_the_backbone():
    """``num_time_features`` sizes the backbone's time embedding (F = 2 here)."""
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    assert model.backbone.enc_embedding.time.in_features == F
    assert model.backbone.dec_embedding.time.in_features == F
    assert P // 2 == model.label_len
