"""GPVar and the decoder-only Transformer: backbone/sampler consistency and likelihood wiring."""

from __future__ import annotations

import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import GPVar, TransformerForecaster
from probforecast.models.gls.transformer import sliding_causal_mask

BACKBONES = {"gpvar": GPVar, "transformer": TransformerForecaster}


@pytest.fixture(scope="module")
def datamodule():
    dm = ForecastDataModule(
        "synthetic",
        context_length=20,
        prediction_length=6,
        batch_size=3,
        num_series_per_batch=4,
        synthetic=SyntheticOptions(num_series=5, length=300, num_test_windows=2),
    )
    dm.setup("fit")
    return dm


def build(kind: str, dm, **kwargs):
    defaults = dict(hidden_size=8, rank=3, lags=[1, 2, 4], dropout=0.0)
    return BACKBONES[kind](
        dm.target_dim,
        dm.context_length,
        dm.prediction_length,
        dm.freq,
        dm.num_time_features,
        **{**defaults, **kwargs},
    )


def test_sliding_causal_mask():
    mask = sliding_causal_mask(5, 2)
    allowed = (~mask).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 1, 1],
    ]


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_step_reproduces_the_teacher_forced_pass(kind, datamodule):
    """The sampler's one-position step gives exactly the hidden state of the one-pass encoder."""
    torch.manual_seed(0)
    model = (
        build(kind, datamodule, attention_window=5)
        if kind == "transformer"
        else build(kind, datamodule)
    )
    model.eval()
    x = torch.randn(6, 15, model.input_size)
    full, _ = model.encode(x)
    _, state = model.encode(x[:, :-3])
    for k in range(3, 0, -1):
        hidden, state = model.step(x[:, -k : x.shape[1] - k + 1], state)
        torch.testing.assert_close(hidden, full[:, -k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_gls_with_identity_correlation_equals_independent_loss(kind, datamodule):
    """C = I (all mixture weight on the identity) must reproduce the w/o likelihood exactly."""
    torch.manual_seed(0)
    gls = build(kind, datamodule, likelihood="gls", num_components=3)
    independent = build(kind, datamodule, likelihood="independent")
    independent.load_state_dict(
        {k: v for k, v in gls.state_dict().items() if not k.startswith("correlation.")}
    )
    with torch.no_grad():
        proj = gls.correlation.weight_head.proj
        proj.weight.zero_()
        proj.bias.copy_(torch.tensor([-60.0, -60.0, 60.0]))
    batch = next(iter(datamodule.train_dataloader()))
    gls.eval(), independent.eval()
    torch.testing.assert_close(gls.loss(batch), independent.loss(batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(BACKBONES))
@pytest.mark.parametrize("correlation", ["kernel", "ar"])
def test_gls_variants_train_and_sample(kind, correlation, datamodule):
    torch.manual_seed(0)
    model = build(
        kind,
        datamodule,
        likelihood="gls",
        correlation=correlation,
        **({"learn_lengthscales": True} if correlation == "kernel" else {"ar_order": 2}),
        reg_w=0.5,
    )
    batch = next(iter(datamodule.train_dataloader()))
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    test_batch = next(iter(datamodule.test_dataloader()))
    samples = model.eval().sample(test_batch, 4)
    assert samples.shape == (test_batch.batch_size, 4, 6, 5) and torch.isfinite(samples).all()
    assert model.sampling_diagnostics()["gls_conditional_fallbacks"] == 0


def test_context_must_cover_the_lags_and_the_residual_buffer():
    with pytest.raises(ValueError, match="must exceed the largest lag 168"):
        GPVar(4, 100, 24, "h")
    with pytest.raises(
        ValueError, match="need data.context_length >= max\\(lags\\) \\+ D - 1 = 27"
    ):
        GPVar(4, 20, 24, "h", lags=[1, 4])
    with pytest.raises(ValueError, match="must divide prediction_length"):
        GPVar(4, 40, 24, "h", lags=[1], cross_correlation_horizon=5)


def test_fallback_counts_add_up_over_windows_and_steps(datamodule, monkeypatch):
    """Every sample path's fallbacks of every step are counted, whether the module samples the
    batch in one call (per-window noise) or once per window (the count used to be reset by each
    call, so only the last window's reached the log)."""
    import probforecast.models.gls.lowrank_ar as lowrank_ar
    from probforecast.models.module import ForecastModule

    real = lowrank_ar.gls_conditional_next

    def one_fallback_per_call(*args, **kwargs):
        return real(*args, **kwargs)._replace(num_fallbacks=args[0].shape[0])  # every path

    monkeypatch.setattr(lowrank_ar, "gls_conditional_next", one_fallback_per_call)
    model = build("gpvar", datamodule, likelihood="gls")
    module = ForecastModule(model, num_samples=2, sample_seed_scope="window").eval()
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.batch_size > 1
    paths = 2 * batch.batch_size
    steps = datamodule.prediction_length
    with torch.no_grad():
        module.draw_samples(batch, 2)
    assert model.sampling_diagnostics() == {"gls_conditional_fallbacks": paths * steps}
    model.per_window_noise = False  # the per-window loop: the same total
    with torch.no_grad():
        module.draw_samples(batch, 2)
    assert model.sampling_diagnostics() == {"gls_conditional_fallbacks": paths * steps}
    assert model.sampling_diagnostics() == {"gls_conditional_fallbacks": 0}  # read resets


@pytest.mark.parametrize("kind", ["gpvar", "transformer"])
def test_conditional_solves_in_chunks_of_paths_give_the_one_solve_samples(
    kind, datamodule, monkeypatch
):
    """The conditional sampler factorises ``CONDITIONAL_ROWS_PER_SOLVE`` paths at a time; the
    samples and fallback counts do not depend on the chunk size (same noise)."""
    import probforecast.models.gls.lowrank_ar as lowrank_ar
    from probforecast.models.noise import SampleNoise

    model = build(kind, datamodule, likelihood="gls").eval()
    batch = next(iter(datamodule.test_dataloader()))
    seeds = list(range(batch.batch_size))
    draws = {}
    for chunk in (5, 10_000):
        monkeypatch.setattr(lowrank_ar, "CONDITIONAL_ROWS_PER_SOLVE", chunk)
        draws[chunk] = model.sample(batch, 7, SampleNoise.per_window(seeds))
    assert 7 * batch.batch_size > 5  # several chunks per step
    torch.testing.assert_close(draws[5], draws[10_000], rtol=1e-5, atol=1e-6)
