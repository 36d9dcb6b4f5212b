"""One conformance suite run over every registered forecaster (DESIGN.md, "Tests")."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import (
    JMCE,
    CWDiff,
    CWFlow,
    CWFlowTS,
    Forecaster,
    GaussianRNN,
    GPVar,
    JMCESpec,
    SeasonalNaive,
    TransformerForecaster,
    VolDyVAE,
    ZeroShotForecaster,
)
from probforecast.models.noise import SampleNoise
from probforecast.utils.init_spec import build_from_spec

FORECASTERS: dict[str, tuple[type[Forecaster], dict]] = {
    "seasonal_naive": (SeasonalNaive, {}),
    "gaussian_rnn": (GaussianRNN, {"hidden_size": 8, "num_layers": 2}),
    "gpvar_independent": (
        GPVar,
        {"hidden_size": 8, "rank": 3, "lags": [1, 2, 24], "likelihood": "independent"},
    ),
    "gpvar_gls": (GPVar, {"hidden_size": 8, "rank": 3, "lags": [1, 2, 24], "likelihood": "gls"}),
    "gpvar_gls_copula": (
        GPVar,
        {
            "hidden_size": 8,
            "rank": 3,
            "lags": [1, 2, 24],
            "likelihood": "gls",
            "marginal": "copula",
        },
    ),
    "transformer_independent": (
        TransformerForecaster,
        {"hidden_size": 8, "rank": 3, "lags": [1, 2, 24], "likelihood": "independent"},
    ),
    "transformer_gls": (
        TransformerForecaster,
        {"hidden_size": 8, "rank": 3, "lags": [1, 2, 24], "likelihood": "gls"},
    ),
    "voldy_vae": (VolDyVAE, {"latent_dim": 8, "mlp_hidden": 16}),
    "voldy_vae_mlp_student_t": (
        VolDyVAE,
        {"latent_dim": 8, "mlp_hidden": 16, "scale_head": "mlp", "likelihood": "student_t"},
    ),
    "zero_shot": (ZeroShotForecaster, {"patch_len": 8, "d_model": 8, "n_heads": 2}),
    "zero_shot_independent": (
        ZeroShotForecaster,
        {"patch_len": 5, "d_model": 8, "n_heads": 2, "channel_mixing": False},
    ),
    "jmce": (JMCE, {"cov_window": 15, "d_model": 8, "n_heads": 2, "d_ff": 16, "e_layers": 1}),
    "cw_diff_raw": (CWDiff, {"prior": "standard", "d_model": 8, "n_heads": 2, "sampling_steps": 4}),
    "cw_diff_e2e": (
        CWDiff,
        {
            "training": "e2e",
            "whitening": "cholesky",
            "jmce": JMCESpec(cov_window=15, d_model=8, n_heads=2, e_layers=1),
            "d_model": 8,
            "n_heads": 2,
            "sampling_steps": 4,
            "eta": 0.5,
        },
    ),
    "cw_flow_raw": (CWFlow, {"prior": "standard", "d_model": 8, "n_heads": 2, "sampling_steps": 3}),
    "cw_flow_e2e": (
        CWFlow,
        {
            "training": "e2e",
            "whitening": "cholesky",
            "jmce": JMCESpec(cov_window=15, d_model=8, n_heads=2, e_layers=1),
            "d_model": 8,
            "n_heads": 2,
            "sampling_steps": 3,
            "solver": "heun",
            "fft_weight": 1.0,
        },
    ),
    "cw_diff_timediff_raw": (
        CWDiff,
        {
            "prior": "standard",
            "sampling_steps": 4,
            "network": {
                "class_path": "probforecast.models.cwgen.networks.TimeDiffNet",
                "init_args": {
                    "inp_embed": 8,
                    "step_dim": 8,
                    "channels": 8,
                    "layers_inp": 2,
                    "layers_I": 2,
                    "layers_II": 2,
                },
            },
        },
    ),  # fmt: skip
    "cw_flowts_raw": (
        CWFlowTS,
        {
            "prior": "standard",
            "sampling_steps": 3,
            "network": {
                "class_path": "probforecast.models.cwgen.networks.FlowTSNet",
                "init_args": {"d_model": 8, "n_heads": 2, "e_layers": 1, "d_layers": 1},
            },
        },
    ),
}


@pytest.fixture(scope="module")
def datamodule():
    dm = ForecastDataModule(
        "synthetic",
        context_length=48,
        prediction_length=12,
        batch_size=4,
        eval_batch_size=3,
        synthetic=SyntheticOptions(num_series=5, length=500, num_test_windows=3),
    )
    dm.setup("fit")
    return dm


def build(name: str, dm: ForecastDataModule) -> Forecaster:
    cls, kwargs = FORECASTERS[name]
    return cls(
        target_dim=dm.target_dim,
        context_length=dm.context_length,
        prediction_length=dm.prediction_length,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        **kwargs,
    )


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_loss_is_finite_scalar_and_gradients_reach_all_parameters(name, datamodule):
    torch.manual_seed(0)
    model = build(name, datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_sample_shape_finite_and_seeded(name, datamodule):
    model = build(name, datamodule).eval()
    batch = next(iter(datamodule.test_dataloader()))
    torch.manual_seed(1)
    a = model.sample(batch, 7)
    torch.manual_seed(1)
    b = model.sample(batch, 7)
    torch.manual_seed(2)
    c = model.sample(batch, 7)
    assert a.shape == (batch.batch_size, 7, datamodule.prediction_length, datamodule.target_dim)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_wrong_batch_geometry_is_rejected(name, datamodule):
    model = build(name, datamodule)
    other = ForecastDataModule(
        "synthetic", context_length=24, prediction_length=12, synthetic=datamodule.synthetic
    )
    other.setup("fit")
    batch = next(iter(other.train_dataloader()))
    with pytest.raises(ValueError, match="context_length=48"):
        model.loss(batch)


def test_seasonal_naive_point_forecast_repeats_the_last_season():
    model = SeasonalNaive(target_dim=1, context_length=10, prediction_length=7, season_length=3)
    past = torch.arange(10.0).reshape(1, 10, 1)
    assert model.point(past).flatten().tolist() == [7, 8, 9, 7, 8, 9, 7]


def test_gaussian_rnn_learns_a_constant_series():
    """Trained on z = 0.5 + tiny noise, the predictive mean goes to 0.5 and sigma shrinks."""
    torch.manual_seed(0)
    model = GaussianRNN(
        target_dim=1,
        context_length=8,
        prediction_length=4,
        num_time_features=0,
        hidden_size=8,
        num_layers=1,
        embedding_dim=0,
    )
    from probforecast.data.batch import ForecastBatch

    def batch(n=16):
        z = 0.5 + 0.01 * torch.randn(n, 12, 1)
        ones = torch.ones_like(z, dtype=torch.bool)
        return ForecastBatch(
            z[:, :8],
            ones[:, :8],
            torch.zeros(n, 8, 0),
            torch.zeros(n, 4, 0),
            z[:, 8:],
            ones[:, 8:],
            torch.zeros(n, 1, dtype=torch.long),
            torch.zeros(n, 1),
            torch.ones(n, 1),
            torch.zeros(n, dtype=torch.long),
        )

    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        model.loss(batch()).backward()
        opt.step()
    samples = model.sample(batch(4), 200)
    assert abs(samples.mean().item() - 0.5) < 0.05
    assert samples.std().item() < 0.1


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_batched_per_window_noise_equals_each_window_sampled_alone(name, datamodule):
    """One ``sample`` call with one generator per window gives each window the samples it gets
    alone (same seed), and a window's samples do not move when another window's seed does.
    Equal up to float32 rounding, which depends on the batch size through the kernels (TimeDiff's
    conv stack reached 1.2e-5 on values of order 1): atol 1e-4, weights seeded."""
    torch.manual_seed(0)
    model = build(name, datamodule).eval()
    assert model.per_window_noise, f"{name} must draw its sampling noise through SampleNoise"
    batch = next(iter(datamodule.test_dataloader()))
    seeds = [101 * (b + 1) for b in range(batch.batch_size)]
    together = model.sample(batch, 5, noise=SampleNoise.per_window(seeds))
    for b, seed in enumerate(seeds):
        alone = model.sample(
            batch.select_windows(slice(b, b + 1)), 5, noise=SampleNoise.per_window([seed])
        )
        torch.testing.assert_close(together[b : b + 1], alone, rtol=1e-4, atol=1e-4)
    moved = model.sample(batch, 5, noise=SampleNoise.per_window([7] + seeds[1:]))
    torch.testing.assert_close(moved[1:], together[1:], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(moved[0], together[0])


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_init_spec_rebuilds_the_same_architecture(name, datamodule, tmp_path):
    """What checkpoints store to rebuild a forecaster: plain data that survives
    ``torch.load(weights_only=True)``, naming the class by its public path, and rebuilding the
    same parameters (same names, shapes and, from the same seed, values)."""
    torch.manual_seed(0)
    model = build(name, datamodule)
    spec = model.init_spec()
    assert spec["class_path"] == f"probforecast.models.{type(model).__name__}"
    assert spec["init_args"]["target_dim"] == datamodule.target_dim
    for key, value in FORECASTERS[name][1].items():
        if dataclasses.is_dataclass(value):  # a typed setting, e.g. CW-Gen's jmce: JMCESpec
            value = {"dataclass": {"class_path": f"probforecast.models.{type(value).__name__}",
                                   "fields": dataclasses.asdict(value)}}  # fmt: skip
        assert spec["init_args"][key] == value
    torch.save(spec, tmp_path / "spec.pt")
    reread = torch.load(tmp_path / "spec.pt", weights_only=True)
    torch.manual_seed(0)
    rebuilt = build_from_spec(reread)
    assert type(rebuilt) is type(model) and rebuilt.init_spec() == spec
    expected = model.state_dict()
    got = rebuilt.state_dict()
    assert list(got) == list(expected)
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(got[key], value, rtol=0, atol=0)
