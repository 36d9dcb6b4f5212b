"""VolDy-VAE's constructor: the official code's defaults and one clear error per bad value."""

from __future__ import annotations

import inspect

import pytest

from probforecast.models import VolDyVAE


def test_defaults_are_the_official_configs_values():
    """beta 0.01 (KL weight), xi = 1e-6 (scale floor), sigma left in RevIN-normalised units,
    GRU scale head with the transferred state, Gaussian likelihood, edge padding."""
    defaults = {
        k: p.default for k, p in inspect.signature(VolDyVAE).parameters.items()
        if p.default is not inspect.Parameter.empty
    }  # fmt: skip
    assert defaults["beta"] == 0.01 and defaults["min_scale"] == 1e-6
    assert defaults["rescale_sigma"] is False and defaults["revin"] is True
    assert defaults["scale_head"] == "gru" and defaults["state_transfer"] is True
    assert defaults["likelihood"] == "gaussian" and defaults["padding"] == "edge"
    assert defaults["freq"] == "h"
    m = VolDyVAE(2, 48, 24, latent_dim=8, mlp_hidden=16)
    assert m.beta == 0.01 and m.rescale_sigma is False and m.freq == "h"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"likelihood": "cauchy"}, "VolDyVAE: likelihood must be one of"),
        ({"padding": "zero"}, "VolDyVAE: padding must be one of"),
        ({"patch_len": 0}, "VolDyVAE: patch_len must be a positive integer; got 0"),
        ({"mlp_hidden": 0}, "VolDyVAE: mlp_hidden must be a positive integer; got 0"),
        (
            {"beta": -0.1},
            "VolDyVAE: expected beta >= 0, min_scale > 0 and 0 <= dropout < 1; got beta=-0.1",
        ),
        ({"min_scale": 0.0}, "got beta=0.01, min_scale=0.0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"dropout": -0.1}, "dropout=-0.1"),
        ({"rescale_sigma": True, "revin": False}, "VolDyVAE: rescale_sigma=True needs revin=True"),
    ],
)
def test_each_bad_value_raises_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        VolDyVAE(2, 48, 24, **{"latent_dim": 8, "mlp_hidden": 16, **kwargs})


def test_limits_that_are_allowed():
    VolDyVAE(2, 48, 24, patch_len=1, latent_dim=1, mlp_hidden=1, dropout=0.0, beta=0.0)
    assert VolDyVAE(2, 48, 24, latent_dim=8, mlp_hidden=16, revin=False).revin is None


def _batch(b: int = 3, ctx: int = 48, h: int = 24, c: int = 2):
    import torch

    from probforecast.data.batch import ForecastBatch

    g = torch.Generator().manual_seed(4)
    z = torch.randn(b, ctx + h, c, generator=g).cumsum(1)
    observed = torch.rand(b, ctx + h, c, generator=g) > 0.15
    z = z * observed
    return ForecastBatch(
        z[:, :ctx], observed[:, :ctx], torch.zeros(b, ctx, 0), torch.zeros(b, h, 0),
        z[:, ctx:], observed[:, ctx:], torch.arange(c).expand(b, c).clone(),
        torch.zeros(b, c), torch.ones(b, c), torch.arange(b) + ctx,
    )  # fmt: skip


@pytest.mark.parametrize("objective", ["full", "no_rec", "no_pred", "mse"])
@pytest.mark.parametrize("likelihood", ["gaussian", "student_t"])
def test_loss_is_beta_kl_plus_the_observed_fit_terms_of_one_reparameterised_draw(
    objective, likelihood
):
    """Paper Eq. 8: ``beta KL(N(mu, e^logvar) || N(0, I)) + NLL(past) + NLL(future)`` with
    ``z = mu + e^{logvar / 2} eps`` (the KL in closed form, summed over the latent axis and
    averaged over patches and windows; each NLL the mean over observed values; ``mse``: squared
    errors; ``no_rec`` / ``no_pred`` drop the past / future term), rebuilt from the model's
    encoder and decoder outputs with the same draw."""
    import torch

    from probforecast.models.voldy.likelihoods import elementwise_nll

    m = VolDyVAE(
        2, 48, 24, latent_dim=8, mlp_hidden=16, objective=objective, likelihood=likelihood,
        beta=0.3, dropout=0.0,
    ).eval()  # fmt: skip
    batch = _batch()
    torch.manual_seed(5)
    loss = m.loss(batch)
    torch.manual_seed(5)
    with torch.no_grad():
        mu, logvar = m.encode(batch)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        out = m.decode(z, with_past=True)
    kl = (0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)).sum(-1).mean()

    def fit(value, mask, loc, scale):
        if objective == "mse":
            return (value - loc).square()[mask].mean()
        return elementwise_nll(likelihood, value, loc, scale, m.df())[mask].mean()

    expected = 0.3 * kl
    scales = (None, None) if objective == "mse" else (out.past_scale[:, 0], out.scale[:, 0])
    if objective != "no_rec":
        expected = expected + fit(
            batch.past_target, batch.past_observed, out.past_loc[:, 0], scales[0]
        )
    if objective != "no_pred":
        expected = expected + fit(
            batch.future_target, batch.future_observed, out.loc[:, 0], scales[1]
        )
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)


def test_mlp_scale_head_is_softplus_of_one_hidden_layer_plus_the_floor():
    """``sigma_k = softplus(MLP(z_k)) + xi`` per patch (Table VI's memoryless ablation), built
    by ``build_scale_head("mlp", ...)`` with the given floor, hidden width and output size."""
    import torch
    import torch.nn.functional as F

    from probforecast.models.voldy.layers import MLPScaleHead, build_scale_head

    head = build_scale_head("mlp", latent_dim=4, hidden_size=6, out_dim=3, min_scale=0.25)
    assert isinstance(head, MLPScaleHead) and head.min_scale == 0.25
    linears = [m for m in head.mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 6), (6, 3)]
    z_past, z_future = torch.randn(2, 5, 4), torch.randn(2, 2, 4)
    past, future = head(z_past, z_future)
    torch.testing.assert_close(past, F.softplus(head.mlp(z_past)) + 0.25)
    torch.testing.assert_close(future, F.softplus(head.mlp(z_future)) + 0.25)
    with pytest.raises(ValueError, match="scale_head must be one of"):
        build_scale_head("tcn", 4, 6, 3, 0.25)
