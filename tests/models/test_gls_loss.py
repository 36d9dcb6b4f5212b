"""The GLS training loss of GPVar / Transformer at model level: the horizon is cut into Q/D
windows of D steps whose joint NLL (non-identity C) and ``reg_w * log|C|`` term match a dense
float64 reference built from the model's own heads."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GPVar, TransformerForecaster
from probforecast.models.gls.lowrank_ar import DEFAULT_REG_W

BACKBONES = {"gpvar": GPVar, "transformer": TransformerForecaster}
Q, D = 6, 3  # two windows of D steps per horizon


@pytest.fixture(scope="module")
def batch():
    dm = ForecastDataModule(
        "synthetic",
        context_length=12,
        prediction_length=Q,
        batch_size=2,
        synthetic=SyntheticOptions(num_series=4, length=200, num_test_windows=1),
    )
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    # one missing horizon value: the window's NLL is then the marginal of the observed ones
    b.future_observed[0, 4, 1] = False
    return dataclasses.replace(
        b, **{f.name: getattr(b, f.name).double() for f in dataclasses.fields(b)
              if getattr(b, f.name).is_floating_point()}
    )  # fmt: skip


def build(kind: str, **kwargs):
    model = BACKBONES[kind](
        4, 12, Q, "h", 4, hidden_size=8, rank=2, lags=[1, 2], dropout=0.0,
        cross_correlation_horizon=D, num_components=3, **kwargs,
    )  # fmt: skip
    torch.manual_seed(3)
    with torch.no_grad():  # weights far from the identity component: C is clearly not I
        model.correlation.weight_head.proj.weight.normal_(0.0, 0.5)
        model.correlation.weight_head.proj.bias.copy_(torch.tensor([2.0, 1.0, -2.0]))
    return model.double().eval()


def captured_heads(model, batch):
    """The loss's head outputs ``(mu, factor, diag)`` over the horizon, the hidden states they
    came from, and the correlation module's input and output ``C``."""
    seen = {}
    h1 = model.head.register_forward_hook(lambda m, i, o: seen.update(hidden=i[0], heads=o))
    h2 = model.correlation.register_forward_hook(lambda m, i, o: seen.update(corr_in=i[0], corr=o))
    loss = model.loss(batch)
    h1.remove(), h2.remove()
    return loss, seen


def dense_window_nll(value, mu, factor, diag, corr, observed):
    """``-log N(value_o; mu_o, Sigma_oo)`` of one ``D x N`` window in float64, with the dense
    time-major ``Sigma[(i, n), (j, m)] = C[i, j] (L_i L_j^T)[n, m] + [i = j, n = m] d_i[n]``."""
    d, n, _ = factor.shape
    sigma = torch.zeros(d * n, d * n, dtype=torch.float64)
    for i in range(d):
        for j in range(d):
            block = corr[i, j] * factor[i] @ factor[j].T
            if i == j:
                block = block + torch.diag(diag[i])
            sigma[i * n : (i + 1) * n, j * n : (j + 1) * n] = block
    keep = observed.reshape(-1)
    normal = torch.distributions.MultivariateNormal(
        mu.reshape(-1)[keep], covariance_matrix=sigma[keep][:, keep]
    )
    return -normal.log_prob(value.reshape(-1)[keep])


def dense_horizon_nll(batch, mu, factor, diag, corr):
    """Sum of :func:`dense_window_nll` over the batch's windows and their ``Q / D`` blocks."""
    total = torch.zeros((), dtype=torch.float64)
    for b in range(batch.batch_size):
        for w in range(Q // D):
            t = slice(w * D, (w + 1) * D)
            total = total + dense_window_nll(
                batch.future_target[b, t], mu[b, t], factor[b, t], diag[b, t],
                corr[b, w], batch.future_observed[b, t],
            )  # fmt: skip
    return total


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_windowed_loss_equals_the_dense_float64_nll(kind, batch):
    model = build(kind, reg_w=0.0)
    loss, seen = captured_heads(model, batch)
    mu, factor, diag = seen["heads"]  # [B, Q, N], [B, Q, N, R], [B, Q, N]
    # C of window w comes from the state at its last step (positions D-1, 2D-1, ...)
    torch.testing.assert_close(seen["corr_in"], seen["hidden"][:, D - 1 :: D])
    corr = seen["corr"]  # [B, Q/D, D, D]
    off_diag = corr - torch.diag_embed(corr.diagonal(dim1=-2, dim2=-1))
    assert off_diag.abs().max() > 0.3, "the test needs a clearly non-identity C"
    total = dense_horizon_nll(batch, mu, factor, diag, corr)
    expected = total / batch.future_observed.sum()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_reg_w_adds_minus_reg_w_log_det_c_per_window_in_the_documented_units(kind, batch):
    """``loss(reg_w) - loss(0) = -reg_w * sum_{b,w} log|C_{b,w}| / n_obs``."""
    plain, regularised = build(kind, reg_w=0.0), build(kind, reg_w=2.5)
    regularised.load_state_dict(plain.state_dict())
    loss0, seen = captured_heads(plain, batch)
    loss1 = regularised.loss(batch)
    log_det = torch.linalg.slogdet(seen["corr"]).logabsdet  # [B, Q/D], dense reference
    assert log_det.shape == (batch.batch_size, Q // D) and bool((log_det < -0.1).all())
    expected = -2.5 * log_det.sum() / batch.future_observed.sum()
    torch.testing.assert_close(loss1 - loss0, expected, rtol=1e-9, atol=1e-12)


def test_reg_w_defaults_to_the_official_value_and_is_refused_without_gls():
    assert build("gpvar").reg_w == DEFAULT_REG_W == 2.5
    with pytest.raises(ValueError, match="reg_w=1.0 regularises the GLS correlation"):
        GPVar(4, 12, Q, "h", 4, lags=[1, 2], likelihood="independent", reg_w=1.0)
    with pytest.raises(ValueError, match="reg_w must be >= 0"):
        GPVar(4, 12, Q, "h", 4, lags=[1, 2], reg_w=-1.0)
    assert GPVar(4, 12, Q, "h", 4, lags=[1, 2], likelihood="independent").reg_w == 0.0


def build_ar(kind: str, order: int, **kwargs):
    """An AR(p)-correlation model whose coefficients are clearly non-zero (phi_1 ~ 0.8)."""
    model = BACKBONES[kind](
        4, 12, Q, "h", 4, hidden_size=8, rank=2, lags=[1, 2], dropout=0.0,
        cross_correlation_horizon=D, correlation="ar", ar_order=order, **kwargs,
    )  # fmt: skip
    torch.manual_seed(3)
    with torch.no_grad():
        model.correlation.ar_head.proj.weight.normal_(0.0, 0.2)
        model.correlation.ar_head.proj.bias.copy_(torch.tensor([1.1, -0.3, 0.1][:order]))
    return model.double().eval()


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_ar_correlation_loss_is_the_dense_nll_with_the_exact_ar_matrix(kind, order, batch):
    """``correlation: ar`` takes the block-banded path: its loss is the dense float64 NLL with
    ``C = C_AR`` (no jitter), and its ``reg_w`` term is ``-reg_w sum log|C_AR|``."""
    model = build_ar(kind, order, reg_w=0.0)
    loss, seen = captured_heads(model, batch)
    mu, factor, diag = seen["heads"]
    corr = seen["corr"].dense()  # [B, Q/D, D, D], exact C_AR
    assert corr[..., 1, 0].abs().min() > 0.3, "the test needs a clearly non-identity C"
    total = dense_horizon_nll(batch, mu, factor, diag, corr)
    torch.testing.assert_close(loss, total / batch.future_observed.sum(), rtol=1e-10, atol=1e-10)
    regularised = build_ar(kind, order, reg_w=2.5)
    regularised.load_state_dict(model.state_dict())
    log_det = torch.linalg.slogdet(corr).logabsdet
    expected = -2.5 * log_det.sum() / batch.future_observed.sum()
    torch.testing.assert_close(regularised.loss(batch) - loss, expected, rtol=1e-9, atol=1e-12)
