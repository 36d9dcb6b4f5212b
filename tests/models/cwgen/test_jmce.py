"""JMCE loss (optimum, hand-built penalty/nuclear/Frobenius cases), high-dim mode, sampling, checkpoints."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from probforecast.models import JMCE, CWDiff, CWFlow
from probforecast.models.cwgen import jmce_loss, sliding_covariance
from probforecast.models.module import ForecastModule
from probforecast.utils.init_spec import build_from_spec
from tests.models.cwgen._helpers import SMALL_JMCE, SMALL_NET, facts, random_batch, small_jmce


def spd(b, q, n, min_eig, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, q, n, n, generator=g, dtype=torch.float64)
    return a @ a.transpose(-1, -2) + min_eig * torch.eye(n, dtype=torch.float64)


def test_loss_is_zero_at_its_optimum():
    target = torch.randn(2, 5, 3, dtype=torch.float64)
    cov = spd(2, 5, 3, 0.2)
    parts = jmce_loss(target.clone(), cov.clone(), target, cov, lambda_min=0.1, w_eig=50.0)
    assert parts.total.abs() < 1e-12 and parts.penalty == 0


def test_penalty_matches_a_hand_built_diagonal_case():
    eig = torch.tensor([[0.05, 0.3, 0.0], [1.0, -0.2, 0.1]], dtype=torch.float64)  # [Q=2, N=3]
    cov = torch.diag_embed(eig).unsqueeze(0)  # [1, 2, 3, 3]
    mu = torch.zeros(1, 2, 3, dtype=torch.float64)
    parts = jmce_loss(mu, cov, mu, cov, lambda_min=0.1, w_eig=50.0)
    expected = (0.05 + 0 + 0.1 + 0 + 0.3 + 0.0) / 6  # relu(0.1 - eig), mean over B, Q, N
    assert math.isclose(parts.penalty.item(), expected, rel_tol=1e-12)
    assert math.isclose(parts.total.item(), 50.0 * expected, rel_tol=1e-12)


def test_nuclear_frobenius_and_mean_terms_match_dense_references():
    b, q, n = 2, 4, 3
    cov = spd(b, q, n, 1.0, seed=1)
    sym = torch.randn(b, q, n, n, dtype=torch.float64)
    diff = sym + sym.transpose(-1, -2)
    target_cov = cov - diff
    mu, target = (
        torch.randn(b, q, n, dtype=torch.float64),
        torch.randn(b, q, n, dtype=torch.float64),
    )
    parts = jmce_loss(mu, cov, target, target_cov, lambda_min=0.1, w_eig=50.0)
    # nuclear norm of a symmetric matrix = sum |eigenvalues|; the loss averages sigma_i over B,Q,N
    nuclear = torch.linalg.eigvalsh(diff).abs().sum(-1).mean() / n
    assert torch.allclose(parts.nuclear, nuclear)
    assert torch.allclose(parts.frobenius, (diff**2).sum() / (b * q * n * n))
    assert torch.allclose(parts.mean, ((mu - target) ** 2).mean())
    expected = parts.mean + nuclear + 0.1 * math.sqrt(q * n) * parts.frobenius + 50 * parts.penalty
    assert torch.allclose(parts.total, expected)
    # the mask removes entries from the mean term only
    mask = torch.zeros(b, q, n, dtype=torch.bool)
    mask[0, 0, 0] = True
    masked = jmce_loss(mu, cov, target, target_cov, mask=mask)
    assert torch.allclose(masked.mean, (mu - target)[0, 0, 0] ** 2)


def test_jmce_forward_covariance_is_spd_and_high_dim_mode_floors_eigenvalues():
    torch.manual_seed(0)
    batch = random_batch()
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    mu, lower, cov = model.estimate(batch)
    assert mu.shape == (4, 8, 3) and cov.shape == (4, 8, 3, 3)
    assert torch.allclose(cov, lower @ lower.transpose(-1, -2))
    assert torch.linalg.eigvalsh(cov.double()).min() > 0
    hd = JMCE(**facts(), cov_window=7, high_dim=True, lambda_min=0.3, **SMALL_JMCE)
    mu, lower, cov = hd.estimate(batch)
    assert torch.linalg.eigvalsh(cov.double()).min() >= 0.3 - 1e-5
    assert torch.allclose(lower @ lower.transpose(-1, -2), cov, atol=1e-5)
    assert hd.loss_parts(batch).penalty == 0


def test_jmce_loss_uses_the_future_sliding_covariance():
    torch.manual_seed(0)
    batch = random_batch()
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    mu, _, cov = model.estimate(batch)
    expected = jmce_loss(mu, cov, batch.future_target, sliding_covariance(batch.future_target, 7))
    assert torch.allclose(model.loss(batch), expected.total)


def test_jmce_samples_follow_its_gaussian():
    torch.manual_seed(0)
    batch = random_batch(b=2)
    model = JMCE(**facts(), cov_window=7, **SMALL_JMCE).eval()
    mu, _, cov = model.estimate(batch)
    s = model.sample(batch, 20_000)  # [B, S, Q, N]
    assert torch.allclose(s.mean(1), mu, atol=0.06)
    c = s - s.mean(1, keepdim=True)
    emp = torch.einsum("bsqi,bsqj->bqij", c, c) / s.shape[1]
    assert ((emp - cov).abs().max() / cov.abs().max()) < 0.06


def test_bad_jmce_arguments_are_rejected():
    with pytest.raises(ValueError, match="context_length = 16"):
        JMCE(**facts(), cov_window=95)
    with pytest.raises(ValueError, match="prediction_length = 8"):
        JMCE(**facts(), cov_window=21)
    with pytest.raises(ValueError, match="lambda_min"):
        JMCE(**facts(), cov_window=7, lambda_min=0.0)


def _save_jmce_checkpoint(path, **kwargs):
    jmce = JMCE(**facts(), cov_window=7, **{**SMALL_JMCE, **kwargs})
    module = ForecastModule(jmce, num_samples=4)
    torch.save({"state_dict": module.state_dict(), "epoch": 0}, path)
    return jmce


def test_two_stage_loads_the_checkpoint_and_freezes_it(tmp_path):
    path = tmp_path / "jmce.ckpt"
    jmce = _save_jmce_checkpoint(path)
    model = CWDiff(**facts(), jmce=small_jmce(path), **SMALL_NET)
    loaded = model.jmce.state_dict()
    for k, v in jmce.state_dict().items():
        assert loaded[k] == v if k == "_extra_state" else torch.equal(loaded[k], v)
    assert not any(p.requires_grad for p in model.jmce.parameters())
    model.train()
    assert not model.jmce.training and model.net.training
    before = {k: v.clone() for k, v in model.jmce.named_parameters()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.loss(random_batch()).backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in model.jmce.named_parameters())


def test_checkpoint_errors_are_clear(tmp_path):
    common = dict(**facts(), **SMALL_NET)
    missing = CWDiff(**common, jmce=small_jmce(tmp_path / "nope.ckpt"))  # only a warning
    with pytest.raises(ValueError, match="nope.ckpt' does not exist"):
        missing.loss(random_batch())
    with pytest.raises(ValueError, match="does not exist"):
        missing.sample(random_batch(), 2)
    wide = tmp_path / "wide.ckpt"
    _save_jmce_checkpoint(wide, d_model=32)
    with pytest.raises(ValueError, match="other sizes"):
        CWDiff(**common, jmce=small_jmce(wide))
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"forecaster.rnn.weight": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match="not a checkpoint of this JMCE"):
        CWDiff(**common, jmce=small_jmce(other))
    with pytest.raises(ValueError, match="needs jmce.checkpoint"):
        CWDiff(**common, jmce=small_jmce())
    with pytest.raises(ValueError, match="needs jmce.checkpoint"):
        CWDiff(**common)  # the default JMCESpec() has no checkpoint
    with pytest.raises(ValueError, match="whitening='cholesky'"):
        CWDiff(**common, jmce=small_jmce(), training="e2e")
    with pytest.raises(ValueError, match="e2e' trains the JMCE jointly from scratch"):
        CWDiff(**common, jmce=small_jmce(wide), training="e2e", whitening="cholesky")
    with pytest.raises(ValueError, match="prior='standard' .* has no JMCE"):
        CWDiff(**common, jmce=small_jmce(), prior="standard")
    with pytest.raises(TypeError, match="jmce must be a JMCESpec; got dict"):
        CWDiff(**common, jmce={"checkpoint": str(wide)}, training="two_stage")
    with pytest.raises(ValueError, match="prior must be one of"):
        CWDiff(**common, jmce=small_jmce(wide), prior="gp")


@pytest.mark.parametrize("causal", [False, True])
def test_ds_attention_matches_the_dense_formula(causal):
    """softmax((tau Q K^T + 1 delta^T) / sqrt(E_h)) V, written out densely per head."""
    from probforecast.models.cwgen.backbone import DSAttention

    torch.manual_seed(0)
    attn = DSAttention(8, 2, dropout=0.0, causal=causal).double().eval()
    x, kv = torch.randn(3, 5, 8, dtype=torch.float64), torch.randn(3, 5, 8, dtype=torch.float64)
    tau = torch.rand(3, 1, dtype=torch.float64) + 0.5
    delta = torch.randn(3, 5, dtype=torch.float64)
    got = attn(x, kv, tau, None if causal else delta)
    q, k, v = attn.q(x), attn.k(kv), attn.v(kv)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        logits = tau[:, :, None] * q[..., sl] @ k[..., sl].transpose(-1, -2)
        if not causal:
            logits = logits + delta[:, None, :]
        logits = logits / 2.0
        if causal:
            logits = logits.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(torch.softmax(logits, -1) @ v[..., sl])
    assert torch.allclose(got, attn.out(torch.cat(heads, -1)), atol=1e-10)


def test_jmce_state_carries_its_arguments_and_refuses_other_settings(tmp_path):
    """A JMCE trained with cov_window=7, high_dim=False is refused by a CW model built with
    cov_window=5, jmce_high_dim=True: one error naming both values of both arguments, raised
    before any weight is copied."""
    jmce = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    config = jmce.state_dict()["_extra_state"]["jmce_config"]
    assert config["cov_window"] == 7 and config["high_dim"] is False
    assert config["label_len"] == 8 and config["d_model"] == SMALL_JMCE["d_model"]
    path = tmp_path / "jmce.ckpt"
    _save_jmce_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]["forecaster._extra_state"]
    assert saved["jmce_config"]["cov_window"] == 7
    with pytest.raises(ValueError, match="other sizes or settings") as err:
        CWDiff(**facts(), jmce=small_jmce(path, cov_window=5, high_dim=True), **SMALL_NET)
    msg = str(err.value)
    assert "cov_window: 7 in the checkpoint, 5 here" in msg
    assert "high_dim: False in the checkpoint, True here" in msg
    # a direct load_state_dict is refused the same way, and lambda_min is checked too
    other = JMCE(**facts(), cov_window=7, lambda_min=0.2, **SMALL_JMCE)
    with pytest.raises(ValueError, match="lambda_min: 0.1 in the checkpoint, 0.2 here"):
        other.load_state_dict(jmce.state_dict())
    # training-only arguments (dropout, w_eig) may differ
    JMCE(**facts(), cov_window=7, **{**SMALL_JMCE, "dropout": 0.3}, w_eig=5.0).load_state_dict(
        jmce.state_dict()
    )


def test_a_checkpoint_without_stored_arguments_still_loads(tmp_path, caplog):
    jmce = JMCE(**facts(), cov_window=7, **SMALL_JMCE)
    state = {k: v for k, v in ForecastModule(jmce, num_samples=2).state_dict().items()}
    del state["forecaster._extra_state"]
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": state}, path)
    model = CWDiff(**facts(), jmce=small_jmce(path), **SMALL_NET)
    assert model.jmce.weights_loaded and "cannot be checked" in caplog.text
    for k, v in jmce.state_dict().items():
        if k != "_extra_state":
            assert torch.equal(model.jmce.state_dict()[k], v)


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_a_two_stage_cw_checkpoint_reloads_without_the_jmce_file(cls, tmp_path):
    """The CW checkpoint holds the frozen JMCE's weights: after the JMCE file is gone, a model
    built from the same arguments and loaded from the CW state samples exactly as the
    original."""
    path = tmp_path / "jmce.ckpt"
    _save_jmce_checkpoint(path)
    args = dict(**facts(), jmce=small_jmce(path), **SMALL_NET)
    torch.manual_seed(0)
    original = ForecastModule(cls(**args), num_samples=2)
    cw_path = tmp_path / "cw.ckpt"
    torch.save({"state_dict": original.state_dict()}, cw_path)
    path.unlink()
    torch.manual_seed(1)  # other random weights everywhere
    rebuilt = ForecastModule(cls(**args), num_samples=2)
    assert not rebuilt.forecaster.jmce.weights_loaded
    rebuilt.load_state_dict(torch.load(cw_path, weights_only=True)["state_dict"])
    assert rebuilt.forecaster.jmce.weights_loaded
    batch = random_batch(b=2)
    torch.manual_seed(2)
    expected = original.forecaster.eval().sample(batch, 3)
    torch.manual_seed(2)
    assert torch.equal(rebuilt.forecaster.eval().sample(batch, 3), expected)


@pytest.mark.parametrize("training", ["two_stage", "e2e"])
def test_the_jmce_spec_survives_a_weights_only_checkpoint_spec(training, tmp_path):
    """``init_spec()`` stores ``jmce`` as a dataclass record of plain data; rebuilding gives the
    same ``JMCESpec`` and the same architecture."""
    path = tmp_path / "jmce.ckpt"
    _save_jmce_checkpoint(path, label_len=4)
    spec = small_jmce(path if training == "two_stage" else None, w_eig=7.0, label_len=4)
    whitening = "cholesky" if training == "e2e" else "symmetric"
    model = CWDiff(**facts(), training=training, whitening=whitening, jmce=spec, **SMALL_NET)
    recorded = model.init_spec()
    assert recorded["init_args"]["jmce"] == {
        "dataclass": {
            "class_path": "probforecast.models.JMCESpec",
            "fields": dataclasses.asdict(spec),
        }
    }
    torch.save(recorded, tmp_path / "spec.pt")
    rebuilt = build_from_spec(torch.load(tmp_path / "spec.pt", weights_only=True))
    assert rebuilt.jmce_spec == spec and rebuilt.jmce.label_len == 4 and rebuilt.jmce.w_eig == 7.0
    assert {k: v.shape for k, v in rebuilt.state_dict().items() if hasattr(v, "shape")} == {
        k: v.shape for k, v in model.state_dict().items() if hasattr(v, "shape")
    }


def test_specs_of_flat_jmce_arguments_upgrade_to_a_jmce_spec(tmp_path):
    """0.1 checkpoints recorded ``jmce_checkpoint``, ``jmce_d_model``, ..., ``cov_window``,
    ``lambda_min``, ``w_eig`` as generator arguments: they rebuild into ``jmce: JMCESpec``."""
    path = tmp_path / "jmce.ckpt"
    _save_jmce_checkpoint(path, lambda_min=0.2, w_eig=3.0)
    flat = {f"jmce_{k}": v for k, v in SMALL_JMCE.items()}
    legacy = {**facts(), **SMALL_NET, **flat, "jmce_checkpoint": str(path), "jmce_high_dim": False,
              "cov_window": 7, "lambda_min": 0.2, "w_eig": 3.0}  # fmt: skip
    spec = {"class_path": "probforecast.models.CWDiff", "init_args": legacy}
    model = build_from_spec(spec)
    assert model.jmce_spec == small_jmce(path, lambda_min=0.2, w_eig=3.0)
    assert model.lambda_min == 0.2 and model.jmce.weights_loaded
    e2e = {**legacy, "training": "e2e", "whitening": "cholesky"}  # 0.1 ignored the file there
    assert build_from_spec({**spec, "init_args": e2e}).jmce_spec.checkpoint is None
    raw = build_from_spec({**spec, "init_args": {**legacy, "prior": "standard"}})
    assert raw.jmce is None and raw.jmce_spec is None
    new = model.init_spec()["init_args"]
    assert "jmce" in new and not set(new) & {"jmce_d_model", "cov_window", "lambda_min"}
