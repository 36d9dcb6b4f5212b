"""JMCE / CW-Diff / CW-Flow constructors: documented defaults, stored arguments, argument checks.

Sources of the expected values:
* spec-cwgen (../shared/papers/spec-cwgen.md) §4 / hyperparameter table: cov_window W = 95,
  lambda_min = 0.1, w_Eigen = 50, JMCE 2 encoder + 1 decoder layers, dropout 0.1;
  §5: T = 100, linear beta 1e-4 -> 0.02, DDIM 50 steps, x0 parameterization, eta = 0.
* the CW-Flow sampler: 10 steps (official E2E FlowTS script; docs/cwgen.md §7); time scale 1000
  (docs/cwgen.md §7, ``CWFlow: 1000``).
* the CPU-sized widths (d_model 64, 4 heads, d_ff 128; default network 2 layers, dropout 0) are
  the project's documented defaults (``JMCE`` / ``CWGenerator`` / ``ConditionalDenoiser`` Args).
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from probforecast.models import JMCE, CWDiff, CWFlow, JMCESpec

# cov_window 95 needs 95 // 2 = 47 < P and < Q
LONG = dict(target_dim=2, context_length=48, prediction_length=48)
E2E = dict(training="e2e", whitening="cholesky")

DEFAULT_JMCE_CONFIG = dict(
    target_dim=2,
    context_length=48,
    prediction_length=48,
    num_time_features=0,
    d_model=64,
    n_heads=4,
    e_layers=2,
    d_layers=1,
    d_ff=128,
    dropout=0.1,
    label_len=24,  # P // 2 (spec §4.2: label_len = floor(L/2))
    cov_window=95,
    lambda_min=0.1,
    w_eig=50.0,
    high_dim=False,
)


def _backbone_sizes(jmce: JMCE) -> dict:
    bb = jmce.backbone
    return dict(
        d_model=bb.enc_embedding.d_model,
        n_heads=bb.encoder[0].attn.n_heads,
        e_layers=len(bb.encoder),
        d_layers=len(bb.decoder),
        d_ff=bb.encoder[0].ff.net[0].out_features,
        dropout=bb.encoder[0].dropout.p,
        time_features=bb.enc_embedding.time is not None,
    )


def test_jmce_defaults_are_the_documented_values():
    model = JMCE(**LONG)
    assert model.freq == "h" and model.num_time_features == 0
    assert model.config == DEFAULT_JMCE_CONFIG
    assert model.get_extra_state() == {"jmce_config": DEFAULT_JMCE_CONFIG}
    assert _backbone_sizes(model) == dict(
        d_model=64, n_heads=4, e_layers=2, d_layers=1, d_ff=128, dropout=0.1, time_features=False
    )
    assert model.weights_loaded is False
    assert (model.cov_window, model.lambda_min, model.w_eig, model.high_dim) == (
        95,
        0.1,
        50.0,
        False,
    )


def test_jmce_passes_its_arguments_to_the_backbone_and_its_config():
    kw = dict(
        target_dim=3,
        context_length=16,
        prediction_length=8,
        freq="15min",
        num_time_features=2,
        d_model=24,
        n_heads=3,
        e_layers=3,
        d_layers=2,
        d_ff=40,
        dropout=0.25,
        label_len=5,
        cov_window=7,
        lambda_min=0.2,
        w_eig=7.0,
        high_dim=True,
    )
    model = JMCE(**kw)
    assert model.freq == "15min" and model.label_len == 5 and model.backbone.label_len == 5
    expected = {k: v for k, v in kw.items() if k != "freq"}
    assert model.config == expected
    assert _backbone_sizes(model) == dict(
        d_model=24, n_heads=3, e_layers=3, d_layers=2, d_ff=40, dropout=0.25, time_features=True
    )
    # N + N(N+1)/2 = 3 + 6 channels in and out
    assert model.backbone.projection.out_features == 9


@pytest.mark.parametrize("w_eig", [0.0, 0.5])
def test_jmce_accepts_any_non_negative_penalty_weight(w_eig):
    model = JMCE(target_dim=2, context_length=16, prediction_length=8, cov_window=7, w_eig=w_eig)
    assert model.w_eig == w_eig and model.config["w_eig"] == w_eig
    with pytest.raises(ValueError, match="w_eig >= 0"):
        JMCE(target_dim=2, context_length=16, prediction_length=8, cov_window=7, w_eig=-0.1)


def _denoiser_sizes(model) -> dict:
    net = model.net
    layer = net.layers.layers[0]
    return dict(
        d_model=net.d_model,
        n_heads=layer.self_attn.num_heads,
        num_layers=len(net.layers.layers),
        d_ff=layer.linear1.out_features,
        dropout=layer.dropout.p,
    )


DEFAULT_NET = dict(d_model=64, n_heads=4, num_layers=2, d_ff=128, dropout=0.0)


def test_cw_diff_defaults_are_the_documented_values():
    model = CWDiff(**LONG, **E2E)
    assert model.freq == "h" and model.num_time_features == 0
    assert model.jmce.freq == "h"
    assert model.jmce.config == DEFAULT_JMCE_CONFIG
    assert _denoiser_sizes(model) == DEFAULT_NET
    # spec §5: T = 100, DDIM 50 uniformly spaced integer steps linspace(T-1, 0, 50), x0, eta 0
    assert model.diffusion_steps == 100 and model.alpha_bars.shape == (100,)
    expected = np.rint(np.linspace(99, 0, 50)).astype(int).tolist()
    assert model.timesteps == expected and len(model.timesteps) == 50
    assert model.parameterization == "x0" and model.eta == 0.0
    betas = np.linspace(1e-4, 0.02, 100)
    assert np.allclose(model.alpha_bars.numpy(), np.cumprod(1 - betas), rtol=1e-6)
    # the schedule is rebuilt from the arguments, never saved: a checkpoint has no alpha_bars
    assert "alpha_bars" not in model.state_dict()


def test_cw_flow_defaults_are_the_documented_values():
    model = CWFlow(**LONG, **E2E)
    assert model.freq == "h" and model.num_time_features == 0
    assert model.jmce.freq == "h"
    assert model.jmce.config == DEFAULT_JMCE_CONFIG
    assert _denoiser_sizes(model) == DEFAULT_NET
    assert model.sampling_steps == 10 and model.solver == "euler"
    assert model.fft_weight == 0.0 and model.time_scale == 1000.0


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_cw_generators_pass_their_arguments_on(cls):
    model = cls(
        target_dim=2,
        context_length=16,
        prediction_length=8,
        freq="D",
        num_time_features=1,
        jmce=JMCESpec(
            cov_window=5,
            d_model=12,
            n_heads=3,
            e_layers=1,
            d_layers=2,
            d_ff=20,
            dropout=0.3,
            high_dim=True,
            lambda_min=0.2,
            w_eig=3.0,
        ),
        d_model=12,
        n_heads=3,
        num_layers=1,
        d_ff=20,
        dropout=0.2,
        **E2E,
    )
    assert model.freq == "D" and model.jmce.freq == "D"
    assert model.jmce.config == dict(
        target_dim=2,
        context_length=16,
        prediction_length=8,
        num_time_features=1,
        d_model=12,
        n_heads=3,
        e_layers=1,
        d_layers=2,
        d_ff=20,
        dropout=0.3,
        label_len=8,
        cov_window=5,
        lambda_min=0.2,
        w_eig=3.0,
        high_dim=True,
    )
    assert model.jmce.high_dim is True
    assert _denoiser_sizes(model) == dict(d_model=12, n_heads=3, num_layers=1, d_ff=20, dropout=0.2)


def test_cw_diff_argument_checks():
    small = dict(target_dim=2, context_length=16, prediction_length=8, prior="standard")
    with pytest.raises(ValueError, match="parameterization must be one of"):
        CWDiff(**small, parameterization="v")
    # the smallest valid schedule and a single DDIM step are allowed
    model = CWDiff(**small, diffusion_steps=2, sampling_steps=1)
    assert model.timesteps == [1] and model.alpha_bars.shape == (2,)


def test_cw_flow_argument_checks():
    small = dict(target_dim=2, context_length=16, prediction_length=8, prior="standard")
    with pytest.raises(ValueError, match="solver must be one of"):
        CWFlow(**small, solver="rk4")
    assert CWFlow(**small, sampling_steps=1).sampling_steps == 1
    with pytest.raises(ValueError, match="sampling_steps >= 1"):
        CWFlow(**small, sampling_steps=0)
    with pytest.raises(ValueError, match="fft_weight >= 0"):
        CWFlow(**small, fft_weight=-0.5)
    with pytest.raises(ValueError, match="time_scale must be > 0"):
        CWFlow(**small, time_scale=0.0)
    assert CWFlow(**small, time_scale=1e-3).time_scale == 1e-3


def test_the_jmce_spec_defaults_are_the_jmce_defaults():
    """``JMCESpec()`` (a CW generator's prior when ``jmce`` is left out) builds the documented
    JMCE: every field's default equals ``JMCE``'s own, and ``build`` passes every field on."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(JMCE.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty and name not in ("freq", "num_time_features")
    }
    fields = {f.name: f.default for f in dataclasses.fields(JMCESpec) if f.name != "checkpoint"}
    assert fields == defaults
    spec = JMCESpec(d_model=12, n_heads=3, e_layers=1, d_layers=2, d_ff=20, dropout=0.3,
                    label_len=5, cov_window=5, lambda_min=0.2, w_eig=3.0, high_dim=True)  # fmt: skip
    built = spec.build(2, 16, 8, "D", 1)
    expected = {k: v for k, v in dataclasses.asdict(spec).items() if k != "checkpoint"}
    assert {k: built.config[k] for k in expected} == expected and built.freq == "D"
