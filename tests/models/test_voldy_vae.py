"""VolDy-VAE: shapes and padding, scale-head recursion, loss pieces, RevIN units, sampling."""

from __future__ import annotations

import pytest
import torch

from probforecast.data.batch import ForecastBatch
from probforecast.models import VolDyVAE
from probforecast.models.voldy.layers import RecurrentScaleHead

TINY = {"latent_dim": 8, "mlp_hidden": 16}


def make_batch(
    b: int, ctx: int, h: int, c: int, seed: int = 0, scale: float = 1.0
) -> ForecastBatch:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, ctx + h, c, generator=g).cumsum(1) * scale
    ones = torch.ones_like(z, dtype=torch.bool)
    return ForecastBatch(
        z[:, :ctx],
        ones[:, :ctx],
        torch.zeros(b, ctx, 0),
        torch.zeros(b, h, 0),
        z[:, ctx:],
        ones[:, ctx:],
        torch.arange(c).repeat(b, 1),
        torch.zeros(b, c),
        torch.ones(b, c),
        torch.arange(b),
    )


def model(c: int, ctx: int, h: int, **kwargs) -> VolDyVAE:
    torch.manual_seed(0)
    return VolDyVAE(c, ctx, h, **{**TINY, **kwargs})


@pytest.mark.parametrize("ctx", [36, 96])
@pytest.mark.parametrize("h", [24, 60, 96, 720])
def test_shapes_and_patch_counts(ctx, h):
    m = model(3, ctx, h).eval()
    assert m.n_past == -(-ctx // 24) and m.n_future == -(-h // 24)
    batch = make_batch(2, ctx, h, 3)
    loss = m.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    mu, logvar = m.encode(batch)
    assert mu.shape == logvar.shape == (2, m.n_past, 8)
    out = m.decode(mu)
    assert out.past_loc.shape == out.past_scale.shape == (2, 1, ctx, 3)
    assert out.loc.shape == out.scale.shape == (2, 1, h, 3)
    assert (out.scale >= 1e-6).all() and (out.past_scale >= 1e-6).all()
    samples = m.sample(batch, 5)
    assert samples.shape == (2, 5, h, 3) and torch.isfinite(samples).all()


def test_paper_patch_counts():
    """Spec §2.1: L=96 -> N=4, M in {4, 8, 14, 30}; ILI L=36 -> N=2, M in {1, 2, 2, 3}."""
    assert [VolDyVAE(1, 96, h, **TINY).n_future for h in (96, 192, 336, 720)] == [4, 8, 14, 30]
    assert [VolDyVAE(1, 36, h, **TINY).n_future for h in (24, 36, 48, 60)] == [1, 2, 2, 3]
    assert VolDyVAE(1, 36, 24, **TINY).n_past == 2 and VolDyVAE(1, 96, 24, **TINY).n_past == 4


@pytest.mark.parametrize(
    ("c", "ctx", "h", "expected"),
    [(7, 96, 96, 700_510), (7, 96, 720, 1_555_806), (21, 96, 720, 1_771_546), (7, 36, 60, 520_030)],
)
def test_parameter_count_matches_the_official_configuration(c, ctx, h, expected):
    """Spec §2.9, counted from the official code's layer sizes (D=128, hidden 256, GRU 128)."""
    assert sum(p.numel() for p in VolDyVAE(c, ctx, h).parameters()) == expected


def test_linear_location_head_option():
    m = VolDyVAE(7, 96, 96, decoder_layers=0)
    assert sum(p.numel() for p in m.location_head.parameters()) == 128 * 168 + 168


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_two_stage_recursion_equals_one_pass_over_the_concatenation(cell):
    torch.manual_seed(0)
    head = RecurrentScaleHead(6, 5, 12, cell=cell).double()
    z_past, z_future = torch.randn(3, 4, 6).double(), torch.randn(3, 7, 6).double()
    sig_past, sig_future = head(z_past, z_future)
    hidden, _ = head.rnn(torch.cat([z_past, z_future], dim=1))
    reference = torch.nn.functional.softplus(head.proj(hidden)) + 1e-6
    torch.testing.assert_close(torch.cat([sig_past, sig_future], 1), reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_future_scale_gradients_reach_the_past_through_the_transferred_state(cell):
    """The state handed from the look-back to the future recursion is not detached: gradients
    of the future scales w.r.t. the past latents and the RNN weights equal those of one pass
    over ``[z_past; z_future]`` (detaching the state drops the past's share and fails here)."""
    torch.manual_seed(0)
    head = RecurrentScaleHead(6, 5, 12, cell=cell).double()
    z_past = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    z_future = torch.randn(3, 7, 6, dtype=torch.float64)
    weights = torch.randn(3, 7, 12, dtype=torch.float64)
    _, sig_future = head(z_past, z_future)
    got = torch.autograd.grad((sig_future * weights).sum(), [z_past, *head.rnn.parameters()])
    hidden, _ = head.rnn(torch.cat([z_past, z_future], dim=1))
    reference = torch.nn.functional.softplus(head.proj(hidden[:, 4:])) + 1e-6
    want = torch.autograd.grad((reference * weights).sum(), [z_past, *head.rnn.parameters()])
    assert got[0].abs().max() > 1e-3
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_model_future_scale_depends_on_the_look_back_only_through_the_gru_state_when_proj_is_off():
    """With the future projection zeroed, the future latents carry no look-back information; the
    future scales must still receive gradient from the past latents via the GRU state."""
    torch.manual_seed(0)
    vae = VolDyVAE(2, 48, 24, patch_len=24, **TINY).eval()
    for p in vae.future_proj.parameters():
        torch.nn.init.zeros_(p)
    vae.encode(make_batch(2, 48, 24, 2))  # RevIN statistics
    z_past = torch.randn(2, 2, 8, requires_grad=True)
    scale = vae.decode(z_past, with_past=False).scale
    (grad,) = torch.autograd.grad(scale.sum(), z_past)
    assert grad.abs().max() > 1e-4


def test_state_transfer_carries_the_past_into_the_future_scales():
    torch.manual_seed(0)
    head = RecurrentScaleHead(6, 5, 12).double()
    z_past, z_future = torch.randn(2, 4, 6).double(), torch.randn(2, 3, 6).double()
    _, a = head(z_past, z_future)
    _, b = head(z_past + 1.0, z_future)
    assert (a - b).abs().max() > 1e-3
    head.state_transfer = False
    _, c = head(z_past, z_future)
    _, d = head(z_past + 1.0, z_future)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    hidden, _ = head.rnn(z_future)  # from the zero state
    torch.testing.assert_close(c, torch.nn.functional.softplus(head.proj(hidden)) + 1e-6)


def test_loss_is_rec_plus_pred_plus_beta_kl():
    """Same latent draw (seed): full(beta) = no_rec(0) + no_pred(0) + beta * KL."""
    batch = make_batch(4, 48, 24, 2)
    values = {}
    for objective, beta in (("full", 0.3), ("no_rec", 0.0), ("no_pred", 0.0)):
        m = model(2, 48, 24, objective=objective, beta=beta).eval()
        torch.manual_seed(5)
        values[objective] = m.loss(batch)
    m = model(2, 48, 24).eval()
    kl = m.kl_divergence(*m.encode(batch))
    expected = values["no_rec"] + values["no_pred"] + 0.3 * kl
    torch.testing.assert_close(values["full"], expected, rtol=1e-5, atol=1e-6)


def test_kl_equals_torch_distributions():
    mu, logvar = torch.randn(3, 4, 5).double(), torch.randn(3, 4, 5).double()
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    torch.testing.assert_close(VolDyVAE.kl_divergence(mu, logvar), reference)


def test_location_is_equivariant_and_rescaled_sigma_follows_the_window_scale():
    """RevIN: mu(a x + b) = a mu(x) + b; with rescale_sigma, sigma(a x + b) = a sigma(x)."""
    batch = make_batch(3, 48, 24, 2, scale=3.0)
    shifted = make_batch(3, 48, 24, 2, scale=3.0)
    shifted.past_target = 2.5 * batch.past_target + 4.0
    for rescale in (False, True):
        m = model(2, 48, 24, rescale_sigma=rescale).double().eval()
        m.revin.eps = 1e-12
        outs = []
        for b in (batch, shifted):
            b.past_target = b.past_target.double()
            torch.manual_seed(3)
            outs.append(m.forecast_parameters(b, 4))
        torch.testing.assert_close(outs[1].loc, 2.5 * outs[0].loc + 4.0)
        factor = 2.5 if rescale else 1.0
        torch.testing.assert_close(outs[1].scale, factor * outs[0].scale)


def test_batched_decoding_of_many_draws_equals_a_loop_over_draws():
    """The vectorised ``(b s)`` layout (and its RevIN broadcast) matches one decode per draw."""
    m = model(3, 48, 36).eval()
    batch = make_batch(2, 48, 36, 3)
    mu, logvar = m.encode(batch)
    s = 4
    z = mu.unsqueeze(1) + torch.randn(2, s, *mu.shape[1:]) * (0.5 * logvar).exp().unsqueeze(1)
    together = m.decode(z.reshape(2 * s, *mu.shape[1:]), num_samples=s, with_past=False)
    for k in range(s):
        one = m.decode(z[:, k], with_past=False)
        torch.testing.assert_close(together.loc[:, k], one.loc[:, 0])
        torch.testing.assert_close(together.scale[:, k], one.scale[:, 0])


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace", "student_t"])
def test_samples_are_location_plus_scaled_noise_of_the_likelihood(likelihood):
    """Same seed: ``sample`` draws the latents of ``forecast_parameters``, then the noise; the
    standardised residual has the likelihood's law (mean 0, known std and mean |.|)."""
    m = model(2, 48, 24, likelihood=likelihood).eval()
    batch = make_batch(8, 48, 24, 2)
    torch.manual_seed(11)
    params = m.forecast_parameters(batch, 200)
    torch.manual_seed(11)
    samples = m.sample(batch, 200)
    u = (samples - params.loc) / params.scale
    expected_abs = {"gaussian": (2 / torch.pi) ** 0.5, "laplace": 1.0}
    assert abs(u.mean().item()) < 0.02
    if likelihood in expected_abs:
        assert u.abs().mean().item() == pytest.approx(expected_abs[likelihood], rel=0.02)
    else:
        nu = m.df()[0].item()
        assert nu == pytest.approx(5.0)
        assert u.var().item() == pytest.approx(nu / (nu - 2), rel=0.1)


def test_mse_objective_has_no_scale_head_and_samples_only_latent_spread():
    m = model(2, 48, 24, objective="mse").eval()
    assert m.scale_head is None
    batch = make_batch(2, 48, 24, 2)
    torch.manual_seed(1)
    params = m.forecast_parameters(batch, 6)
    torch.manual_seed(1)
    torch.testing.assert_close(m.sample(batch, 6), params.loc)
    assert params.loc.std(dim=1).mean() > 0  # fresh latent per sample
    with pytest.raises(ValueError, match="no scale head"):
        m.predictive_scale(batch)


def test_sampling_is_one_batched_non_autoregressive_pass():
    m = model(2, 48, 72).eval()
    calls = {"loc": 0, "proj": 0}
    m.location_head.register_forward_hook(lambda *_: calls.__setitem__("loc", calls["loc"] + 1))
    m.future_proj.register_forward_hook(lambda *_: calls.__setitem__("proj", calls["proj"] + 1))
    m.sample(make_batch(3, 48, 72, 2), 100)
    assert calls == {"loc": 1, "proj": 1}


def test_bad_arguments_give_one_clear_error():
    with pytest.raises(ValueError, match="scale_head must be one of"):
        VolDyVAE(2, 48, 24, scale_head="transformer")
    with pytest.raises(ValueError, match="objective must be one of"):
        VolDyVAE(2, 48, 24, objective="elbo")
    with pytest.raises(ValueError, match="rescale_sigma=True needs revin=True"):
        VolDyVAE(2, 48, 24, revin=False, rescale_sigma=True)
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        VolDyVAE(2, 48, 24, latent_dim=0)


def test_missing_values_do_not_enter_the_loss():
    m = model(2, 48, 24).eval()
    batch = make_batch(2, 48, 24, 2)
    batch.future_observed[:, 5:] = False
    torch.manual_seed(0)
    a = m.loss(batch)
    batch.future_target[:, 5:] = 1e6
    torch.manual_seed(0)
    assert torch.equal(a, m.loss(batch))
