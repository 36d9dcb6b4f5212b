"""The CW prior's promises, checked exactly (survivors of the models.cwgen.prior mutation run):
``load_jmce_state``'s one clear error per bad checkpoint, the training-mode checks, the legacy
``jmce_*`` upgrade, loading a frozen JMCE (its log lines, frozen and in eval mode), ``train()``,
``diagnostic_figures`` and the prior's whitening / e2e loss."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import pytest
import torch

from probforecast.models import JMCE, CWDiff, JMCESpec
from probforecast.models.cwgen import CWGenerator, jmce_loss, load_jmce_state, sliding_covariance
from probforecast.models.cwgen.jmce_spec import upgrade_legacy_jmce_arguments
from probforecast.models.module import ForecastModule
from tests.models.cwgen._helpers import SMALL_JMCE, SMALL_NET, facts, random_batch, small_jmce

LOGGER = "probforecast.models.cwgen.generator"
E2E = dict(training="e2e", whitening="cholesky")
SIZES_HINT = (
    "; set the jmce fields (and the data's target_dim / context / prediction length) to those "
    "of the JMCE run"
)
NOT_JMCE_HINT = (
    "; it must be a ForecastModule checkpoint whose forecaster is probforecast.models.JMCE"
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _small(data: dict | None = None, **kwargs) -> JMCE:
    """The tests' small JMCE for ``facts()`` (updated with ``data``)."""
    return JMCE(**{**facts(), **(data or {})}, **{"cov_window": 7, **SMALL_JMCE, **kwargs})


def _checkpoint_state(jmce: JMCE) -> dict:
    """The ``state_dict`` a ForecastModule checkpoint of ``jmce`` holds (``forecaster.*``)."""
    return ForecastModule(jmce, num_samples=2).state_dict()


def _save(path, state: dict) -> str:
    torch.save({"state_dict": state, "epoch": 0}, path)
    return str(path)


def _save_jmce_checkpoint(path, **kwargs) -> JMCE:
    jmce = _small(**kwargs)
    _save(path, _checkpoint_state(jmce))
    return jmce


def _raised(fn, *args) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args)
    return str(err.value)


def _messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


# ---------------------------------------------------------------- load_jmce_state


def test_a_missing_file_is_one_error_naming_it(tmp_path):
    path = str(tmp_path / "nope.ckpt")
    assert _raised(load_jmce_state, _small(), path) == (
        f"jmce.checkpoint {path!r} does not exist; train the JMCE first (probforecast fit "
        "--config configs/jmce/<dataset>.yaml) and pass its .ckpt, or load a CW-Diff / CW-Flow "
        "checkpoint (it holds the frozen JMCE's weights)"
    )


def test_a_checkpoint_of_other_arguments_names_the_file_and_copies_nothing(tmp_path):
    path = str(tmp_path / "w7.ckpt")
    _save_jmce_checkpoint(path)  # cov_window 7
    jmce = _small(cov_window=5)
    before = {k: v.clone() for k, v in jmce.state_dict().items() if k != "_extra_state"}
    assert _raised(load_jmce_state, jmce, path) == (
        f"jmce.checkpoint {path!r} holds a JMCE trained with other sizes or settings "
        "(cov_window: 7 in the checkpoint, 5 here); set the JMCE arguments (for CW-Diff / "
        "CW-Flow: the fields of jmce, and the data's lengths) to the JMCE run's values"
    )
    assert not jmce.weights_loaded
    assert all(torch.equal(v, before[k]) for k, v in jmce.state_dict().items() if k in before)


def test_stored_extra_state_without_arguments_still_loads(tmp_path):
    """``_extra_state`` present but without ``jmce_config``: nothing to check, the weights load."""
    source = _small()
    state = _checkpoint_state(source)
    state["forecaster._extra_state"] = {}
    path = _save(tmp_path / "bare.ckpt", state)
    torch.manual_seed(1)
    jmce = _small()
    load_jmce_state(jmce, path)
    assert jmce.weights_loaded
    for k, v in source.state_dict().items():
        if k != "_extra_state":
            assert torch.equal(jmce.state_dict()[k], v)


DROPPED = [  # the first four JMCE weights in sorted order
    "backbone.dec_embedding.time.bias",
    "backbone.dec_embedding.time.weight",
    "backbone.dec_embedding.token.bias",
    "backbone.dec_embedding.token.weight",
]
ADDED = ["zz.a", "zz.b", "zz.c", "zz.d"]


@pytest.mark.parametrize(
    ("n_missing", "n_unexpected", "listed"),
    [
        (4, 4, f"missing {DROPPED[:3]}..., unexpected {ADDED[:3]}..."),
        (3, 0, f"missing {DROPPED[:3]}, unexpected []"),
        (0, 3, f"missing [], unexpected {ADDED[:3]}"),
        (1, 0, f"missing {DROPPED[:1]}, unexpected []"),
    ],
)
def test_a_checkpoint_of_another_model_lists_three_keys_of_each_kind(
    tmp_path, n_missing, n_unexpected, listed
):
    jmce = _small()
    state = _checkpoint_state(jmce)
    assert set(DROPPED) <= {k.removeprefix("forecaster.") for k in state}
    for key in DROPPED[:n_missing]:
        del state["forecaster." + key]
    for key in ADDED[:n_unexpected]:
        state["forecaster." + key] = torch.zeros(2)
    path = _save(tmp_path / "other.ckpt", state)
    assert _raised(load_jmce_state, _small(), path) == (
        f"jmce.checkpoint {path!r} is not a checkpoint of this JMCE: {listed}{NOT_JMCE_HINT}"
    )


@pytest.mark.parametrize("several", [False, True])
def test_a_checkpoint_of_other_sizes_names_the_first_wrong_weight(tmp_path, several):
    """Same stored arguments, other tensor sizes: the first wrong weight of the checkpoint
    (its order), ``and more`` when there are others."""
    state = _checkpoint_state(_small())
    state["forecaster.backbone.enc_embedding.token.bias"] = torch.zeros(17)  # model: (16,)
    if several:
        state["forecaster.backbone.dec_embedding.token.bias"] = torch.zeros(18)
    path = _save(tmp_path / "sizes.ckpt", state)
    first = "backbone.enc_embedding.token.bias: checkpoint (17,) vs model (16,)"
    more = " and more" if several else ""
    assert _raised(load_jmce_state, _small(), path) == (
        f"jmce.checkpoint {path!r} was trained with other sizes ({first}{more}){SIZES_HINT}"
    )


# ---------------------------------------------------------------- constructor checks


def test_training_mode_errors_are_exact(tmp_path):
    common = dict(**facts(), **SMALL_NET)
    assert _raised(lambda: CWDiff(**common, jmce=small_jmce(), training="e2e")) == (
        "training='e2e' back-propagates through the whitening: set whitening='cholesky' "
        "(the differentiable triangular path, spec §7)"
    )
    assert _raised(lambda: CWDiff(**common, jmce=small_jmce())) == (
        "training='two_stage' needs jmce.checkpoint: the .ckpt of a JMCE run (probforecast fit "
        "--config configs/jmce/<dataset>.yaml); or use training='e2e' (joint) or "
        "prior='standard' (Raw)"
    )
    path = str(tmp_path / "jmce.ckpt")
    assert _raised(lambda: CWDiff(**common, jmce=small_jmce(path), **E2E)) == (
        "training='e2e' trains the JMCE jointly from scratch and never reads jmce.checkpoint "
        f"({path!r}); remove it, or use training='two_stage'"
    )


def test_choice_and_prior_errors_name_the_argument():
    common = dict(**facts(), **SMALL_NET, prior="standard")
    assert _raised(lambda: CWDiff(**common, training="joint")) == (
        "training must be one of ['two_stage', 'e2e']; got 'joint'"
    )
    assert _raised(lambda: CWDiff(**common, whitening="zca")) == (
        "whitening must be one of ['symmetric', 'cholesky']; got 'zca'"
    )
    spec = small_jmce()
    assert _raised(lambda: CWDiff(**common, jmce=spec)) == (
        "prior='standard' (the Raw baseline) has no JMCE, so `jmce` would be ignored; remove it "
        f"or set prior='jmce' (got {spec})"
    )


def test_the_base_generator_has_the_documented_defaults(tmp_path):
    """``CWGenerator`` built from the data lengths and a JMCE checkpoint only: freq 'h', no time
    features, prior jmce / two_stage / symmetric, network d_model 64, 4 heads, 2 layers,
    d_ff 128, dropout 0 (the Args of its docstring)."""
    lengths = dict(target_dim=3, context_length=16, prediction_length=8)
    path = str(tmp_path / "jmce.ckpt")
    _save_jmce_checkpoint(path, data=dict(num_time_features=0))
    model = CWGenerator(**lengths, jmce=small_jmce(path))
    assert (model.freq, model.jmce.freq, model.num_time_features) == ("h", "h", 0)
    assert (model.prior, model.training_mode, model.whitening) == ("jmce", "two_stage", "symmetric")
    assert model.jmce.weights_loaded and model.frozen_prior
    net = model.net
    layer = net.layers.layers[0]
    sizes = (net.d_model, layer.self_attn.num_heads, len(net.layers.layers))
    assert sizes + (layer.linear1.out_features, layer.dropout.p) == (64, 4, 2, 128, 0.0)


# ---------------------------------------------------------------- legacy arguments


def test_specs_without_legacy_arguments_come_back_unchanged():
    args = {**facts(), "jmce": small_jmce(), "prior": "jmce"}
    assert upgrade_legacy_jmce_arguments(args) is args


def test_a_standard_prior_drops_the_legacy_arguments():
    args = {**facts(), "prior": "standard", "jmce_d_model": 8, "cov_window": 7, "w_eig": 2.0}
    assert upgrade_legacy_jmce_arguments(args) == {**facts(), "prior": "standard"}


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_e2e_drops_the_legacy_checkpoint(with_checkpoint):
    args = {"training": "e2e", "cov_window": 7}
    if with_checkpoint:
        args["jmce_checkpoint"] = "old.ckpt"
    assert upgrade_legacy_jmce_arguments(args) == {
        "training": "e2e",
        "jmce": JMCESpec(cov_window=7),
    }


@pytest.mark.parametrize(
    ("legacy", "field", "value"),
    [
        ("jmce_checkpoint", "checkpoint", "a.ckpt"),
        ("jmce_d_model", "d_model", 8),
        ("jmce_n_heads", "n_heads", 2),
        ("jmce_e_layers", "e_layers", 3),
        ("jmce_d_layers", "d_layers", 2),
        ("jmce_d_ff", "d_ff", 12),
        ("jmce_dropout", "dropout", 0.3),
        ("jmce_high_dim", "high_dim", True),
        ("cov_window", "cov_window", 5),
        ("lambda_min", "lambda_min", 0.2),
        ("w_eig", "w_eig", 3.0),
    ],
)
def test_each_legacy_argument_becomes_its_spec_field(legacy, field, value):
    args = {"prior": "jmce", "d_model": 16, legacy: value}
    assert upgrade_legacy_jmce_arguments(args) == {
        "prior": "jmce",
        "d_model": 16,
        "jmce": JMCESpec(**{field: value}),
    }


# ---------------------------------------------------------------- frozen JMCE


def test_a_missing_frozen_jmce_is_a_warning_and_stays_frozen(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = str(tmp_path / "gone.ckpt")
    model = CWDiff(**facts(), jmce=small_jmce(path), **SMALL_NET)
    assert _messages(caplog, logging.WARNING) == [
        f"jmce.checkpoint {path} does not exist: the frozen JMCE's weights must come from a "
        "CW-Diff / CW-Flow checkpoint (else the first loss or sample call fails)"
    ]
    assert _messages(caplog, logging.INFO) == []
    assert model.jmce_checkpoint == path and not model.jmce.weights_loaded
    assert not model.jmce.training
    assert not any(p.requires_grad for p in model.jmce.parameters())


def test_an_existing_frozen_jmce_is_loaded_and_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = str(tmp_path / "jmce.ckpt")
    source = _save_jmce_checkpoint(path)
    model = CWDiff(**facts(), jmce=small_jmce(path), **SMALL_NET)
    assert _messages(caplog, logging.INFO) == [f"CW prior: frozen JMCE loaded from {path}"]
    assert _messages(caplog, logging.WARNING) == []
    assert model.jmce.weights_loaded and not model.jmce.training
    assert not any(p.requires_grad for p in model.jmce.parameters())
    for k, v in source.state_dict().items():
        if k != "_extra_state":
            assert torch.equal(model.jmce.state_dict()[k], v)


def test_train_keeps_only_a_frozen_jmce_in_eval_mode(tmp_path):
    path = str(tmp_path / "jmce.ckpt")
    _save_jmce_checkpoint(path)
    frozen = CWDiff(**facts(), jmce=small_jmce(path), **SMALL_NET).train()
    assert frozen.training and frozen.net.training and not frozen.jmce.training
    joint = CWDiff(**facts(), jmce=small_jmce(), **E2E, **SMALL_NET).train()
    assert joint.training and joint.net.training and joint.jmce.training
    joint.eval()
    assert not joint.jmce.training and not joint.net.training
    raw = CWDiff(**facts(), prior="standard", **SMALL_NET).train()
    assert raw.training and raw.jmce is None


def test_diagnostic_figures_come_from_the_jmce_prior_only():
    batch = random_batch(b=2)
    assert CWDiff(**facts(), prior="standard", **SMALL_NET).diagnostic_figures(batch) == {}
    model = CWDiff(**facts(), jmce=small_jmce(), **E2E, **SMALL_NET).eval()
    figures = model.diagnostic_figures(batch)
    assert list(figures) == ["jmce_sigma"]
    assert isinstance(figures["jmce_sigma"], plt.Figure)


# ---------------------------------------------------------------- the prior's whitening


def test_symmetric_whitening_clamps_at_the_jmce_lambda_min(tmp_path):
    """Two-stage symmetric whitening floors the JMCE covariance's eigenvalues at the spec's
    ``lambda_min`` (here 1.5, not the whitening's own default)."""
    path = str(tmp_path / "jmce.ckpt")
    _save_jmce_checkpoint(path, lambda_min=1.5)
    model = CWDiff(**facts(), jmce=small_jmce(path, lambda_min=1.5), **SMALL_NET)
    batch = random_batch()
    whitening, loss = model.prior_whitening(batch)
    assert loss is None
    with torch.no_grad():
        _, _, covariance = model.jmce.estimate(batch)
    raw = torch.linalg.eigvalsh(covariance.double())
    assert (raw < 1.0).any()  # the floor bites
    assert torch.allclose(whitening.eigenvalues.double(), raw.clamp_min(1.5), atol=1e-4)


def test_the_e2e_loss_belongs_to_the_same_estimate_as_the_whitening():
    """With JMCE dropout active, the JMCE loss returned is the loss of the very forward pass
    the whitening comes from (``jmce_loss`` of its ``mu`` and ``L L^T``)."""
    torch.manual_seed(0)
    model = CWDiff(**facts(), jmce=small_jmce(dropout=0.5), **E2E, **SMALL_NET).train()
    batch = random_batch()
    whitening, loss = model.prior_whitening(batch)
    target = batch.future_target
    expected = jmce_loss(
        whitening.mu,
        whitening.factor @ whitening.factor.transpose(-1, -2),
        target,
        sliding_covariance(target, 7),
        lambda_min=0.1,
        w_eig=50.0,
        mask=batch.future_observed,
    ).total
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-6)
    other_pass = model.jmce.loss_parts(batch).total  # another dropout mask
    assert not torch.allclose(other_pass, expected, rtol=1e-3)
