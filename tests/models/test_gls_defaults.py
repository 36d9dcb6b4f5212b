"""Constructor defaults and argument checks of the GLS forecasters (``GPVar``,
``TransformerForecaster``, their base ``LowRankARForecaster``) and of ``TemporalCorrelation``.

Where a default is a paper or official-code value, the source is named next to the assertion:
spec-gls = ../shared/papers/spec-gls.md (its hyperparameter table, §4), fidelity = the GLS
section of ../shared/papers/fidelity-notes.md. The other defaults are the library's documented
signature values (docs/api, the class docstrings).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from probforecast.distributions import ar_toeplitz_correlation
from probforecast.models import GPVar, TransformerForecaster
from probforecast.models.gls.temporal_correlation import TemporalCorrelation
from tests.models.gls_fixtures import double_training_batch


def gpvar(target_dim, context_length, prediction_length, freq, **kwargs) -> GPVar:
    return GPVar(
        target_dim=target_dim,
        context_length=context_length,
        prediction_length=prediction_length,
        freq=freq,
        **kwargs,
    )


def transformer(target_dim, context_length, prediction_length, freq, **kwargs):
    return TransformerForecaster(
        target_dim=target_dim,
        context_length=context_length,
        prediction_length=prediction_length,
        freq=freq,
        **kwargs,
    )


def zeroed_head_variance(model) -> torch.Tensor:
    """The head's variance ``d`` when its linear layer outputs 0: ``sigma_init^2 + sigma_min^2``
    (``d = softplus(p_1 + softplus^{-1}(sigma_init^2)) + sigma_min^2``)."""
    with torch.no_grad():
        model.head.proj.weight.zero_()
        model.head.proj.bias.zero_()
        _, _, diag = model.head(torch.randn(2, model.hidden_size))
    return diag


# ---------------------------------------------------------------- LowRankARForecaster defaults
def test_base_defaults_of_a_model_built_from_the_data_facts_only():
    model = GPVar(
        target_dim=3, context_length=200, prediction_length=4
    )  # everything else at its default
    # freq "h" (hourly): the documented default lags [1, 24, 168]
    assert model.freq == "h"
    assert model.lags == [1, 24, 168] and model.max_lag == 168
    assert model.hidden_size == 40  # official train_baseline.py CLI default (docs/gls_accuracy.md)
    assert model.rnn.hidden_size == 40
    assert model.rank == 10 and model.head.rank == 10  # R = 10 (spec-gls, paper Table 3)
    assert model.head.proj.out_features == 2 + 10
    # inputs: 3 lags + observed flag + 0 time features + an 8-wide series embedding
    assert model.num_time_features == 0
    assert model.embedding.embedding_dim == 8
    assert model.input_size == 3 + 1 + 0 + 8 == model.rnn.input_size
    assert model.likelihood == "gls" and model.marginal == "gaussian"
    assert model.horizon_d == 4  # D = Q (spec-gls: D = Q)
    assert model.sample_group_size is None
    # sigma_init 1.0, sigma_min 1e-3 (spec-gls, [code] loss.py): d = 1 + 1e-6 at a zero output
    torch.testing.assert_close(
        zeroed_head_variance(model), torch.full((2,), 1.0 + 1e-6), rtol=1e-6, atol=1e-7
    )


def test_base_correlation_defaults():
    model = GPVar(target_dim=3, context_length=200, prediction_length=4)
    corr = model.correlation
    assert corr.kind == "kernel" and corr.size == 4
    assert corr.weight_head.proj.out_features == 3  # M = 3 (identity included)
    # lengthscale_start 1.0: the official delta_l = 1 set {1, 2, ...} (fidelity note 5)
    torch.testing.assert_close(corr.lengthscales, torch.tensor([1.0, 2.0]))
    # fixed, not learned (spec-gls: "Lengthscales are fixed"; learnable is the Table 11 ablation)
    assert not any("lengthscale" in name for name, _ in model.named_parameters())
    assert "correlation.raw_lengthscales" in dict(model.named_buffers())
    # ar_order default 1
    assert (
        GPVar(
            target_dim=3, context_length=200, prediction_length=4, correlation="ar"
        ).correlation.ar_head.proj.out_features
        == 1
    )


def test_freq_is_stored_and_selects_the_default_lags():
    daily = gpvar(3, 40, 4, "D")
    assert daily.freq == "D" and daily.lags == [1, 7, 14]


def test_correlation_options_reach_temporal_correlation():
    fixed = gpvar(3, 40, 4, "D", num_components=3, lengthscales=[0.7, 3.0])
    torch.testing.assert_close(fixed.correlation.lengthscales, torch.tensor([0.7, 3.0]))
    started = gpvar(3, 40, 4, "D", num_components=4, lengthscale_start=0.5)
    torch.testing.assert_close(started.correlation.lengthscales, torch.tensor([0.5, 1.5, 2.5]))
    learned = gpvar(3, 40, 4, "D", learn_lengthscales=True)
    assert isinstance(learned.correlation.raw_lengthscales, nn.Parameter)
    assert "correlation.raw_lengthscales" in dict(learned.named_parameters())
    ar3 = gpvar(3, 40, 4, "D", correlation="ar", ar_order=3)
    assert ar3.correlation.kind == "ar" and ar3.correlation.ar_head.proj.out_features == 3


def test_sigma_options_reach_the_head():
    model = gpvar(3, 40, 4, "D", sigma_init=2.0, sigma_min=0.1)
    expected = torch.full((2,), 2.0**2 + 0.1**2)
    torch.testing.assert_close(zeroed_head_variance(model), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dim", [0, 1])
def test_embedding_dim_zero_disables_the_embedding_and_one_enables_it(dim):
    model = gpvar(3, 40, 4, "D", embedding_dim=dim)
    assert model.input_size == 3 + 1 + 0 + dim == model.rnn.input_size
    keys = [k for k in model.state_dict() if k.startswith("embedding.")]
    if dim == 0:
        assert model.embedding is None and keys == []  # "0 disables it": no parameter at all
    else:
        assert model.embedding.weight.shape == (3, 1) and keys == ["embedding.weight"]


# ---------------------------------------------------------------- LowRankARForecaster checks
def test_lags_must_be_positive():
    with pytest.raises(ValueError, match=r"lags must be >= 1; got \[0, 2\]"):
        gpvar(3, 40, 4, "D", lags=[2, 0])


def test_context_must_exceed_the_largest_lag_by_at_least_one():
    # unrolled context P = context_length - max(lags) = 1 is the smallest allowed
    model = gpvar(3, 5, 2, "D", lags=[1, 4], likelihood="independent")
    assert model.unrolled_context == 1
    with pytest.raises(ValueError, match=r"use context_length >= 172"):  # 168 + Q = 4
        gpvar(3, 100, 4, "h")
    with pytest.raises(ValueError, match=r"must exceed the largest lag 4 .* >= 6"):
        gpvar(3, 4, 2, "D", lags=[1, 4], likelihood="independent")


def test_gls_needs_d_minus_one_context_residuals_exactly():
    # lags [1, 2] (max 2), Q = D = 4: the sampler needs P >= D - 1 = 3 context residuals
    model = gpvar(3, 5, 4, "D", lags=[1, 2])
    assert model.unrolled_context == 3 == model.horizon_d - 1
    with pytest.raises(ValueError, match=r"last D-1=3 context residuals.* = 5"):
        gpvar(3, 4, 4, "D", lags=[1, 2])  # P = 2 = D - 2
    # independent errors have no residual buffer: P = 2 is enough
    assert gpvar(3, 4, 4, "D", lags=[1, 2], likelihood="independent").unrolled_context == 2


def test_likelihood_and_marginal_are_checked_and_stored():
    with pytest.raises(ValueError, match="likelihood must be 'independent' or 'gls'; got 'iid'"):
        gpvar(3, 40, 4, "D", likelihood="iid")
    with pytest.raises(ValueError, match="marginal must be 'gaussian' or 'copula'; got 'x'"):
        gpvar(3, 40, 4, "D", marginal="x")
    assert gpvar(3, 40, 4, "D", marginal="copula").marginal == "copula"


def test_reg_w_error_names_the_fix():
    with pytest.raises(ValueError, match="remove reg_w or use likelihood: gls"):
        gpvar(3, 40, 4, "D", likelihood="independent", reg_w=0.5)


def test_sample_group_size_one_is_allowed():
    assert gpvar(3, 40, 4, "D", sample_group_size=1).sample_group_size == 1
    with pytest.raises(ValueError, match="sample_group_size must be >= 1 or null; got 0"):
        gpvar(3, 40, 4, "D", sample_group_size=0)


# ---------------------------------------------------------------- GPVar
def test_gpvar_lstm_defaults():
    rnn = gpvar(3, 40, 4, "D").rnn
    assert rnn.num_layers == 2  # 2 LSTM layers (spec-gls, paper Table 3)
    assert rnn.dropout == 0.01  # dropout 0.01 (spec-gls, paper Table 3)
    assert gpvar(3, 40, 4, "D", num_layers=3).rnn.num_layers == 3


def test_gpvar_one_layer_has_no_dropout_and_no_torch_warning():
    """nn.LSTM warns when dropout (applied between layers) is set with one layer; the model
    passes 0 then."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnn = gpvar(3, 40, 4, "D", num_layers=1, dropout=0.3).rnn
    assert rnn.num_layers == 1 and rnn.dropout == 0.0


# ---------------------------------------------------------------- TransformerForecaster
def test_transformer_defaults():
    model = transformer(3, 40, 4, "D", hidden_size=8)
    layers = model.layers.layers
    assert model.num_layers == len(layers) == 2  # 2 decoder layers (spec-gls, paper Table 3)
    for layer in layers:
        assert layer.self_attn.num_heads == 2  # n_heads = 2 (spec-gls, paper Table 3)
        assert layer.linear1.out_features == 2 * 8  # feed-forward 2H (spec-gls §1.3)
        # dropout 0.01 (spec-gls, paper Table 3) everywhere in the layer
        assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == 0.01
        assert layer.self_attn.dropout == 0.01
    assert model.window == model.unrolled_context == 40 - 14  # P: lags [1, 7, 14] of "D"


def test_transformer_options_and_checks():
    model = transformer(3, 40, 4, "D", hidden_size=12, num_layers=3, num_heads=3, dropout=0.2)
    assert model.num_layers == len(model.layers.layers) == 3
    assert model.layers.layers[0].linear1.out_features == 24
    assert model.layers.layers[0].dropout.p == 0.2
    with pytest.raises(ValueError, match="hidden_size=10 must be divisible by num_heads=4"):
        transformer(3, 40, 4, "D", hidden_size=10, num_heads=4)


def test_transformer_with_odd_heads_builds_without_a_nested_tensor_warning():
    """The cached decoder never uses nested tensors; asking for them with an odd head count
    makes nn.TransformerEncoder warn at construction."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transformer(3, 40, 4, "D", hidden_size=9, num_heads=3)


# ---------------------------------------------------------------- TemporalCorrelation
def test_temporal_correlation_defaults():
    corr = TemporalCorrelation(6, 5)
    assert corr.kind == "kernel" and corr.size == 5
    assert corr.weight_head.proj.out_features == 3  # M = 3 (identity included)
    torch.testing.assert_close(corr.lengthscales, torch.tensor([1.0, 2.0]))  # fidelity note 5
    assert list(corr.parameters()) == list(corr.weight_head.parameters())  # fixed lengthscales
    # the default builds a valid kernel-mixture C: row 0 is sum_m w_m exp(-k^2 / l_m^2) + w_M [k=0]
    hidden = torch.randn(2, 4, 6)
    weights = corr.mixture_weights(hidden)
    lags = torch.arange(5, dtype=torch.float32)
    row = weights[:, :2, None] * torch.exp(-(lags**2) / torch.tensor([1.0, 2.0])[:, None] ** 2)
    row = row.sum(1)
    row[:, 0] += weights[:, 2] + 1e-6
    torch.testing.assert_close(corr(hidden)[:, 0], row)
    assert TemporalCorrelation(6, 5, "ar").ar_head.proj.out_features == 1


def test_temporal_correlation_options():
    two = TemporalCorrelation(6, 5, num_components=2)  # one SE kernel + identity: the minimum
    torch.testing.assert_close(two.lengthscales, torch.tensor([1.0]))
    given = TemporalCorrelation(6, 5, num_components=3, lengthscales=[0.7, 3.0])
    torch.testing.assert_close(given.lengthscales, torch.tensor([0.7, 3.0]))
    started = TemporalCorrelation(6, 5, num_components=3, lengthscale_start=0.5)
    torch.testing.assert_close(started.lengthscales, torch.tensor([0.5, 1.5]))
    learned = TemporalCorrelation(6, 5, learn_lengthscales=True)
    assert isinstance(learned.raw_lengthscales, nn.Parameter)
    # softplus^{-1} is stored: softplus(raw) gives the lengthscales back
    torch.testing.assert_close(
        learned.raw_lengthscales.detach(), torch.tensor([math.log(math.expm1(1.0)),
                                                         math.log(math.expm1(2.0))])
    )  # fmt: skip
    for order in (1, 2, 3):
        assert TemporalCorrelation(6, 5, "ar", ar_order=order).ar_head.proj.out_features == order


def test_temporal_correlation_checks():
    with pytest.raises(ValueError, match="num_components must be >= 2 .*; got 1"):
        TemporalCorrelation(6, 5, num_components=1)
    with pytest.raises(ValueError, match=r"need 2 lengthscales for 3 components; got \[1.0\]"):
        TemporalCorrelation(6, 5, num_components=3, lengthscales=[1.0])
    with pytest.raises(ValueError, match="ar_order must be 1, 2 or 3; got 4"):
        TemporalCorrelation(6, 5, "ar", ar_order=4)
    with pytest.raises(ValueError, match="correlation kind must be 'kernel' or 'ar'; got 'se'"):
        TemporalCorrelation(6, 5, "se")


def test_options_of_the_other_correlation_kind_are_errors():
    with pytest.raises(
        ValueError,
        match=r"correlation 'ar' does not use the kernel-mixture options \['num_components', 'lengthscale_start'\]",
    ):
        TemporalCorrelation(6, 5, "ar", num_components=4, lengthscale_start=0.5)
    with pytest.raises(ValueError, match=r"\['lengthscales'\]"):
        TemporalCorrelation(6, 5, "ar", lengthscales=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"\['learn_lengthscales'\]"):
        TemporalCorrelation(6, 5, "ar", learn_lengthscales=False)
    with pytest.raises(ValueError, match="^ar_order=2 is an option of correlation 'ar'"):
        TemporalCorrelation(6, 5, "kernel", ar_order=2)
    assert TemporalCorrelation(6, 5, "ar", ar_order=2).ar_head.proj.out_features == 2


@pytest.mark.parametrize(
    "option",
    [
        {"correlation": "kernel"},
        {"correlation": "ar"},
        {"num_components": 3},
        {"lengthscales": [1.0, 2.0]},
        {"lengthscale_start": 1.0},
        {"learn_lengthscales": False},
        {"ar_order": 1},
    ],
)
def test_correlation_options_with_the_independent_likelihood_are_errors(option):
    with pytest.raises(ValueError, match=rf"^\['{next(iter(option))}'\] configure the GLS"):
        GPVar(4, 12, 6, "h", 4, lags=[1, 2], likelihood="independent", **option)


def test_specs_written_with_every_correlation_default_still_load():
    """Before the options became kind-specific a spec recorded all of them; the defaults that
    its likelihood and kind do not use are dropped, other values still raise."""
    legacy = dict(correlation="kernel", num_components=3, lengthscales=None)
    legacy |= dict(lengthscale_start=1.0, learn_lengthscales=False, ar_order=1)
    base = {"target_dim": 4, "context_length": 12, "prediction_length": 6, "lags": [1, 2]}
    kernel = GPVar.upgrade_init_args({**base, **legacy, "num_components": 4})
    assert "ar_order" not in kernel and kernel["num_components"] == 4
    assert kernel["correlation"] == "kernel" and kernel["lengthscale_start"] == 1.0
    GPVar(**kernel)
    ar = GPVar.upgrade_init_args({**base, **legacy, "correlation": "ar", "ar_order": 2})
    assert ar == {**base, "correlation": "ar", "ar_order": 2}
    assert GPVar(**ar).correlation.ar_head.proj.out_features == 2
    independent = GPVar.upgrade_init_args({**base, **legacy, "likelihood": "independent"})
    assert independent == {**base, "likelihood": "independent"}
    GPVar(**independent)
    wrong = GPVar.upgrade_init_args({**base, **legacy, "correlation": "ar", "num_components": 4})
    with pytest.raises(ValueError, match=r"\['num_components'\]"):
        GPVar(**wrong)


def test_matrix_is_the_dense_correlation_of_either_kind():
    """``matrix``: the kernel mixture itself, or the AR(p) Toeplitz matrix with its 1e-6
    diagonal jitter (``ar_toeplitz_correlation``), for views and diagnostics."""
    torch.manual_seed(0)
    hidden = torch.randn(2, 3, 6)
    kernel = TemporalCorrelation(6, 5)
    torch.testing.assert_close(kernel.matrix(hidden), kernel(hidden), rtol=0, atol=0)
    ar = TemporalCorrelation(6, 5, "ar", ar_order=2)
    phi = ar.ar_head(hidden).mean(dim=-2)
    torch.testing.assert_close(ar.matrix(hidden), ar_toeplitz_correlation(phi, 5), rtol=0, atol=0)


def test_diagnostic_figures_are_the_correlation_views():
    batch, dm = double_training_batch(12, 6, 4)
    model = GPVar(4, 12, 6, "h", dm.num_time_features, lags=[1, 2], cross_correlation_horizon=3)
    model = model.double()
    views = model.eval().diagnostic_figures(batch)
    assert views and all(name.startswith("gls_") for name in views)
    plain = GPVar(4, 12, 6, "h", dm.num_time_features, lags=[1, 2], likelihood="independent")
    assert plain.double().diagnostic_figures(batch) == {}
