"""The generator-network contract (``network.py``) and the base models' networks: TimeDiff
(``TimeDiffNet``) and FlowTS (``FlowTSNet``, ``CWFlowTS`` and its inpainting sampler)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from probforecast.cli import ProbForecastCLI
from probforecast.models import CWDiff, CWFlow
from probforecast.models.cwgen import CWFlowTS, FlowTSNet, TimeDiffNet, build_network
from probforecast.models.cwgen.denoiser import ConditionalDenoiser
from probforecast.models.cwgen.jmce import JMCELoss
from probforecast.models.cwgen.networks.flowts_blocks import fourier_season, rotary
from probforecast.models.cwgen.networks.timediff import timediff_step_features
from tests.conftest import REPO, SHARED_DATA, have_real_data
from tests.models.cwgen._helpers import (
    FLOWTS_NET,
    TIMEDIFF_NET,
    F,
    N,
    P,
    Q,
    RecordingNet,
    facts,
    random_batch,
    small_jmce,
)
from tests.models.cwgen.test_formulas import NoiseRecorder, reference_source, variant_kwargs

E2E = dict(training="e2e", whitening="cholesky", jmce=small_jmce())
NET_FACTS = dict(target_dim=N, context_length=P, prediction_length=Q, num_time_features=F)


def build(spec, **extra):
    init = {**spec["init_args"], **extra}
    return build_network({"class_path": spec["class_path"], "init_args": init}, **NET_FACTS)


def inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, history = torch.randn(b, Q, N, generator=g), torch.randn(b, P, N, generator=g)
    return x, history, torch.randn(b, Q, F, generator=g)


# ---------------------------------------------------------------------------- the contract
def test_network_spec_builds_with_the_data_facts_and_rejects_bad_specs():
    net = build_network(
        {"class_path": "tests.models.cwgen._helpers.RecordingNet", "init_args": {"gain": 2.0}},
        **NET_FACTS,
    )
    assert isinstance(net, RecordingNet) and net.facts == (N, P, Q, F)
    assert torch.equal(net.w.data, torch.full((N,), 2.0))
    with pytest.raises(ValueError, match="cannot be imported"):
        build_network({"class_path": "probforecast.models.cwgen.networks.NoSuchNet"}, **NET_FACTS)
    with pytest.raises(ValueError, match="come from the data"):
        build_network({"class_path": TIMEDIFF_NET["class_path"], "init_args": {"target_dim": 2}})
    with pytest.raises(ValueError, match="class_path"):
        build_network({"init_args": {}}, **NET_FACTS)
    with pytest.raises(ValueError, match="nn.Module"):
        build_network({"class_path": "probforecast.models.cwgen.network.build_network"})


def test_default_network_is_the_conditional_denoiser_with_unchanged_state_keys():
    """``network: null`` builds ``ConditionalDenoiser`` under ``net`` (old checkpoints load)."""
    model = CWDiff(**facts(), prior="standard", d_model=16, n_heads=2, num_layers=1, d_ff=32)
    assert type(model.net) is ConditionalDenoiser
    reference = ConditionalDenoiser(N, P, Q, F, d_model=16, n_heads=2, num_layers=1, d_ff=32)
    keys = {k for k in model.state_dict() if k.startswith("net.")}
    assert keys == {f"net.{k}" for k in reference.state_dict()}


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_a_custom_network_from_the_spec_is_the_one_used(cls):
    """Loss and sampling call the network built from the spec, with the window's history."""
    spec = {"class_path": "tests.models.cwgen._helpers.RecordingNet", "init_args": {}}
    model = cls(**facts(), prior="standard", network=spec, sampling_steps=2).eval()
    assert isinstance(model.net, RecordingNet)
    RecordingNet.calls = 0
    batch = random_batch(b=2)
    model.loss(batch)
    assert RecordingNet.calls == 1
    model.sample(batch, 3)
    assert RecordingNet.calls == 3


def test_a_custom_network_given_in_yaml_through_the_cli_is_used(tmp_path):
    """A YAML overlay sets ``network`` (class_path + init_args); the CLI builds the forecaster
    with it, and training calls it."""
    overlay = tmp_path / "net.yaml"
    overlay.write_text(
        "model:\n  forecaster:\n    init_args:\n      network:\n"
        "        class_path: tests.models.cwgen._helpers.RecordingNet\n"
        "        init_args: {gain: 3.0}\n"
    )
    warnings.simplefilter("ignore")
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs/cw_diff/synthetic_e2e.yaml")),
            *("--config", str(overlay)),
            *("--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"),
            *("--data.synthetic.length", "300"),
        ],
        run=False,
    )
    net = cli.model.forecaster.net
    dm = cli.datamodule
    assert isinstance(net, RecordingNet) and torch.equal(
        net.w.data, torch.full((dm.target_dim,), 3.0)
    )
    assert net.facts == (
        dm.target_dim,
        dm.context_length,
        dm.prediction_length,
        dm.num_time_features,
    )
    RecordingNet.calls = 0
    dm.setup("fit")
    cli.model.forecaster.loss(next(iter(dm.train_dataloader())))
    assert RecordingNet.calls == 1


# ---------------------------------------------------------------------------- TimeDiff
def test_timediff_step_features_are_the_official_table():
    """``[sin(t 10^(4k/h)), cos(t 10^(4k/h))]``, ``h = dim/2``: the official table's rows."""
    t = torch.tensor([0.0, 1.0, 7.0, 99.0])
    got = timediff_step_features(t, 8).double()
    k = torch.arange(4, dtype=torch.float64)
    angles = t.double()[:, None] * 10.0 ** (k * 4.0 / 4)
    assert torch.allclose(got, torch.cat([angles.sin(), angles.cos()], -1).float().double())


@pytest.mark.parametrize("branch", ["none", "linear"])
def test_timediff_shapes_contract_and_history_conditioning(branch):
    torch.manual_seed(0)
    net = build(TIMEDIFF_NET, prior_branch=branch).eval()
    x, history, ftf = inputs()
    t = torch.tensor([0.0, 10.0, 99.0])
    cond = net.condition(history, ftf)
    assert cond.shape == (3, 8, Q)
    out = net(x, t, history, cond)
    assert out.shape == (3, Q, N)
    assert torch.allclose(out, net(x, t, history, None), atol=1e-6)  # cond = f(history) only
    other = net(x, t, history + torch.randn_like(history), None)
    assert (other - out).abs().max() > 1e-3  # the history reaches the output
    assert (net(x, t + 5, history, cond) - out).abs().max() > 1e-4  # and the step
    history.requires_grad_(True)
    net(x, t, history, None).square().sum().backward()
    assert history.grad.abs().sum(dim=(0, 2)).gt(0).all()  # every history step matters


def test_timediff_linear_branch_starts_at_the_history_mean():
    """TimeDiff's linear AR initialisation: ``W_n = 1/P``, ``b = 0`` maps each series' history
    onto its mean at every horizon step."""
    net = build(TIMEDIFF_NET, prior_branch="linear")
    _, history, _ = inputs()
    prior = torch.einsum("nqp,rpn->rqn", net.prior_weight, history) + net.prior_bias.T
    assert torch.allclose(prior, history.mean(1, keepdim=True).expand(-1, Q, -1), atol=1e-6)


def test_timediff_in_cw_diff_sees_the_history_and_trains():
    torch.manual_seed(0)
    model = CWDiff(**facts(), prior="standard", network=TIMEDIFF_NET, sampling_steps=3)
    assert isinstance(model.net, TimeDiffNet)
    loss = model.loss(random_batch())
    loss.backward()
    assert all(p.grad is not None for p in model.net.parameters())
    assert model.eval().sample(random_batch(b=2), 4).shape == (2, 4, Q, N)


# ---------------------------------------------------------------------------- FlowTS
def test_rotary_embedding_rotates_pairs_by_position():
    x = torch.randn(2, 1, 5, 4)
    got = rotary(x, base=100.0)
    freqs = 100.0 ** (-torch.tensor([0.0, 2.0]) / 4)
    for pos in range(5):
        for j, w in enumerate(freqs):
            c, s = math.cos(pos * w), math.sin(pos * w)
            a, b = x[..., pos, 2 * j], x[..., pos, 2 * j + 1]
            assert torch.allclose(got[..., pos, 2 * j], a * c - b * s, atol=1e-6)
            assert torch.allclose(got[..., pos, 2 * j + 1], a * s + b * c, atol=1e-6)


def test_fourier_season_keeps_the_largest_bins():
    """A sum of two cosines (bins 3 and 5 of T = 32; floor(ln 15) = 2 bins kept) is rebuilt
    exactly, at T times its amplitude (the unnormalised rFFT, as FlowTS)."""
    t = torch.arange(32, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * 3 * t / 32 + 0.4) + 0.5 * torch.cos(2 * math.pi * 5 * t / 32)
    got = fourier_season(wave.reshape(1, 32, 1))
    assert torch.allclose(got[0, :, 0], 32 * wave, atol=1e-9)


def test_flowts_shapes_contract_and_history_conditioning():
    torch.manual_seed(0)
    net = build(FLOWTS_NET).eval()
    x, history, _ = inputs()
    t = torch.tensor([0.1, 0.5, 0.9])
    out = net(x, t, history, None)
    assert out.shape == (3, Q, N)
    full = net.forward_sequence(torch.cat([history, x], 1), t)
    assert full.shape == (3, P + Q, N) and torch.equal(full[:, P:], out)
    assert (net(x, t, history + torch.randn_like(history), None) - out).abs().max() > 1e-3
    assert (net(x, t + 0.05, history, None) - out).abs().max() > 1e-5  # the time reaches it
    with pytest.raises(ValueError, match="P \\+ Q"):
        net.forward_sequence(torch.randn(1, P, N), t[:1])


class SequenceStub(nn.Module):
    """Stands in for FlowTS' network: records ``(u, t)`` and returns ``(W - u) / (1 - t)``, the
    velocity that lands the sampler's update ``u + (1 - t) v`` exactly on ``W``."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w, self.calls = w, []

    def condition(self, history, future_time_feat):
        return None

    def forward_sequence(self, u, t):
        self.calls.append((u.detach().clone(), t.detach().clone()))
        return (self.w - u) / (1 - t.reshape(-1, 1, 1))


@pytest.mark.parametrize(("steps", "exponent", "last"), [(5, 0.1, False), (4, 1.0, True)])
def test_flowts_sampler_grid_inpainting_and_update(steps, exponent, last):
    """The network is called at ``t_i = (i/num)^k`` (``i < num - 1``; ``include_last``: ``i <
    num``); before every call the history part is the observed context, so the call's input
    is ``t_i [C; W_fut] + (1 - t_i) Z`` with a fresh ``Z``: ``N(0, I)`` on the history, the
    prior on the target; the samples are ``W``'s target part."""
    torch.manual_seed(0)
    model = CWFlowTS(
        **facts(), prior="standard", network=FLOWTS_NET, sampling_steps=steps,
        time_exponent=exponent, include_last=last,
    ).eval()  # fmt: skip
    batch = random_batch(b=2)
    s = 2000
    w = torch.cat([batch.past_target + 5.0, torch.randn(2, Q, N)], 1).repeat_interleave(s, 0)
    model.net = SequenceStub(w)
    samples = model.sample(batch, s)
    grid = [(i / steps) ** exponent for i in range(steps if last else steps - 1)]
    assert [round(float(t[0]), 6) for _, t in model.net.calls] == [round(g, 6) for g in grid]
    assert all(torch.all(t == t[0]) for _, t in model.net.calls)
    assert torch.allclose(samples, w[:, P:].reshape(2, s, Q, N))
    context = batch.past_target.repeat_interleave(s, 0)
    zs = []
    for (u, _), t_i in zip(model.net.calls[1:], grid[1:], strict=True):
        target = torch.cat([context, w[:, P:]], 1)  # inpainted history, last target estimate
        zs.append((u - t_i * target) / (1 - t_i))
    z = torch.stack(zs)  # implied sources: N(0, I) everywhere for prior standard
    assert z.mean().abs() < 0.05 and (z.std() - 1).abs() < 0.05
    assert (zs[0] - zs[-1]).abs().mean() > 0.5  # a fresh source each step


def test_flowts_sampler_source_is_the_jmce_prior_on_the_target_part():
    torch.manual_seed(0)
    model = CWFlowTS(**facts(), network=FLOWTS_NET, sampling_steps=3, **E2E).eval()
    batch = random_batch(b=2)
    s = 4000
    model.net = SequenceStub(torch.zeros(2 * s, P + Q, N))
    model.sample(batch, s)
    u0, t0 = model.net.calls[0]  # t_0 = 0: the input is the source itself
    assert float(t0[0]) == 0.0
    u0 = u0.reshape(2, s, P + Q, N).double()
    with torch.no_grad():
        mu, _, cov = (v.double() for v in model.jmce.estimate(batch))
    sd = cov.diagonal(dim1=-2, dim2=-1).sqrt()
    assert ((u0[:, :, P:].mean(1) - mu).abs() / sd).max() < 0.1
    assert ((u0[:, :, P:].std(1) - sd).abs() / sd).max() < 0.1
    assert u0[:, :, :P].mean().abs() < 0.02 and (u0[:, :, :P].std() - 1).abs() < 0.02
    assert mu.abs().max() > 0.3


@pytest.mark.parametrize("variant", ["symmetric", "e2e"])
def test_flowts_training_input_and_target_on_the_joint_sequence(variant, tmp_path, monkeypatch):
    """The network sees ``tau [C; X] + (1 - tau) [eps_C; mu + A eps_X]`` at time ``tau`` and the
    loss is ``mean((out - ([C; X] - Z))^2)`` over the whole sequence."""
    kw = {k: v for k, v in variant_kwargs(variant, tmp_path).items() if k not in SMALL_NETS}
    torch.manual_seed(0)
    model = CWFlowTS(**facts(), network=FLOWTS_NET, **kw).eval()

    class Stub(SequenceStub):
        def forward_sequence(self, u, t):
            self.calls.append((u.detach().clone(), t.detach().clone()))
            return 0.5 * u.flip(-1) - 0.3

    model.net = Stub(None)
    model.jmce.loss_parts = lambda batch, estimate=None: JMCELoss(*[torch.zeros(())] * 5)
    batch = random_batch(b=4)
    rec = NoiseRecorder(monkeypatch, "randn")
    loss = model.loss(batch)
    scale = 0.5 if variant == "e2e" else 1.0
    (u_tau, t_in) = model.net.calls[0]
    tau = t_in.double().reshape(-1, 1, 1)
    assert ((tau > 0) & (tau < 1)).all()
    eps_x = [d for d in rec.draws if d.shape == (4, 1, Q, N)]
    eps_c = [d for d in rec.draws if d.shape == (4, 1, P, N)]
    assert len(eps_x) == 1 and len(eps_c) == 1
    z = torch.cat([eps_c[0][:, 0].double(), reference_source(model, batch, eps_x[0][:, 0])], 1)
    u = torch.cat([batch.past_target, batch.future_target], 1).double()
    assert torch.allclose(u_tau.double(), tau * u + (1 - tau) * z, atol=1e-4)
    out = 0.5 * u_tau.double().flip(-1) - 0.3
    assert torch.allclose(loss.double(), scale * (out - (u - z)).square().mean(), rtol=1e-4)


SMALL_NETS = ("d_model", "n_heads", "num_layers", "d_ff")


@pytest.mark.parametrize(
    ("cls", "network"), [(CWDiff, TIMEDIFF_NET), (CWFlow, FLOWTS_NET), (CWFlowTS, FLOWTS_NET)]
)
def test_e2e_generative_loss_alone_reaches_the_jmce_through_the_base_networks(cls, network):
    torch.manual_seed(0)
    model = cls(**facts(), network=network, **E2E)
    model.jmce.loss_parts = lambda batch, estimate=None: JMCELoss(*[torch.zeros(())] * 5)
    model.loss(random_batch()).backward()
    grads = {n: p.grad for n, p in model.jmce.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [
        n for n, g in grads.items() if g is None or g.abs().sum() == 0
    ]


def test_cw_flowts_needs_a_sequence_network():
    with pytest.raises(ValueError, match="forward_sequence"):
        CWFlowTS(**facts(), prior="standard", network=TIMEDIFF_NET)
    assert isinstance(CWFlowTS(**facts(), prior="standard").net, FlowTSNet)


@pytest.mark.parametrize(
    ("config", "overlay", "cls", "width"),
    [
        (
            "cw_diff/timediff_etth1_e2e.yaml",
            ["cw_diff/trainer/timediff_cpu_scaled.yaml", "jmce/trainer/cw_prior_cpu_scaled.yaml"],
            TimeDiffNet,
            32,
        ),
        (
            "cw_flow/flowts_etth2_raw.yaml",
            ["cw_flow/trainer/flowts_cpu_scaled.yaml"],
            FlowTSNet,
            32,
        ),
    ],
)
def test_cpu_overlays_stack_on_the_base_model_configs(config, overlay, cls, width, tmp_path):
    """The CPU overlays replace the network spec (same class, smaller) and the budget, keep
    the base config's sampler and protocol, and the JMCE prior overlay changes only the JMCE
    sizes it names (the base config's loss settings stay: the jmce block is merged)."""
    if not have_real_data():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    warnings.simplefilter("ignore")
    cli = ProbForecastCLI(
        args=[
            *("--config", str(REPO / "configs" / config)),
            *(item for o in overlay for item in ("--config", str(REPO / "configs" / o))),
            *("--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"),
            *("--data.root", str(SHARED_DATA), "--data.cache_dir", str(tmp_path / "cache")),
        ],
        run=False,
    )
    f = cli.model.forecaster
    assert type(f.net) is cls
    first = next(m for m in f.net.modules() if isinstance(m, nn.Conv1d))
    assert first.out_channels == width
    assert cli.trainer.max_epochs == 5 and cli.datamodule.batch_size == 16
    assert (cli.datamodule.context_length, cli.datamodule.prediction_length) == (168, 192)
    if isinstance(f, CWFlowTS):
        assert (f.sampling_steps, f.time_exponent) == (5, 0.1)
    else:
        assert len(f.timesteps) == 20
        assert (f.jmce_spec.d_model, f.jmce_spec.n_heads, f.jmce_spec.d_ff) == (32, 2, 64)
        assert (f.jmce_spec.cov_window, f.jmce_spec.w_eig, f.jmce_spec.dropout) == (95, 50.0, 0.1)
        assert f.jmce.config["d_model"] == 32 and f.jmce_spec.checkpoint is None
