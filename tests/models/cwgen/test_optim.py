"""CWAdamW (the official e2e optimiser): two groups (JMCE at its own learning rate) and
per-model gradient clipping; and the selection settings of the CW-Gen configs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
import yaml

from probforecast.models import CWDiff, CWFlow
from probforecast.models.cwgen import CWAdamW
from probforecast.models.module import ForecastModule
from tests.conftest import REPO
from tests.models.cwgen._helpers import SMALL_NET, facts, random_batch, small_jmce

E2E = dict(
    training="e2e", whitening="cholesky", jmce=small_jmce(), **SMALL_NET,
)  # fmt: skip


@pytest.mark.parametrize("cls", [CWDiff, CWFlow])
def test_e2e_optimiser_has_a_jmce_group_at_its_own_learning_rate(cls):
    model = cls(**facts(), **E2E)
    module = ForecastModule(model, optimizer=partial(CWAdamW, lr=1e-3, weight_decay=5e-4))
    opt = module.configure_optimizers()
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"generator", "jmce"}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert ids["jmce"] == {id(p) for p in model.jmce.parameters()}
    assert ids["generator"] == {id(p) for n, p in model.named_parameters() if "jmce" not in n}
    assert groups["jmce"]["lr"] == 1e-4 and groups["generator"]["lr"] == 1e-3
    assert groups["jmce"]["weight_decay"] == groups["generator"]["weight_decay"] == 5e-4
    # two-stage and Raw: the (trainable) generator only
    raw = ForecastModule(cls(**facts(), prior="standard", **SMALL_NET), optimizer=CWAdamW)
    assert [g["name"] for g in raw.configure_optimizers().param_groups] == ["generator"]


def test_each_group_is_clipped_separately():
    """JMCE gradient norm 10, generator 0.5, max_norm 1: the JMCE gradient is scaled to norm 1
    and the generator's is untouched (a global clip would scale both by 1/10.01); the update
    uses the clipped gradients (AdamW's first step is lr * g / (|g| + eps) per entry, so compare
    the moments instead)."""
    torch.manual_seed(0)
    model = CWDiff(**facts(), **E2E)
    opt = CWAdamW(model.parameters(), lr=1e-3, jmce_lr=1e-4, max_norm=1.0)
    jmce = list(model.jmce.parameters())
    gen = [p for n, p in model.named_parameters() if not n.startswith("jmce.")]

    def set_grads(params, norm):
        grads = [torch.randn_like(p) for p in params]
        total = torch.sqrt(sum(g.square().sum() for g in grads))
        for p, g in zip(params, grads, strict=True):
            p.grad = g * norm / total

    set_grads(jmce, 10.0)
    set_grads(gen, 0.5)
    raw_gen = [p.grad.clone() for p in gen]
    raw_jmce = [p.grad.clone() for p in jmce]
    opt.step()

    def norm(grads):
        return float(torch.sqrt(sum(g.square().sum() for g in grads)))

    assert norm([p.grad for p in jmce]) == pytest.approx(1.0, rel=1e-5)
    assert all(torch.equal(p.grad, g) for p, g in zip(gen, raw_gen, strict=True))
    # Adam's first moment after one step is (1 - beta1) * clipped gradient
    m = opt.state[jmce[0]]["exp_avg"]
    assert torch.allclose(m, 0.1 * raw_jmce[0] / 10.0, atol=1e-8)
    with pytest.raises(ValueError, match="max_norm"):
        CWAdamW(model.parameters(), max_norm=0.0)


def test_clipping_runs_after_the_closure():
    """Lightning passes a closure that runs backward: the gradients it makes are clipped."""
    torch.manual_seed(0)
    model = CWFlow(**facts(), **E2E)
    opt = CWAdamW(model.parameters(), max_norm=1e-3)
    batch = random_batch()

    def closure():
        opt.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss is not None
    for group in opt.param_groups:
        grads = [p.grad for p in group["params"] if p.grad is not None]
        assert float(torch.sqrt(sum(g.square().sum() for g in grads))) <= 1e-3 * (1 + 1e-5)


# ----------------------------------------------------------------------------- configs
CONFIG_DIRS = ("configs/jmce", "configs/cw_diff", "configs/cw_flow")
CONFIGS = sorted(p for d in CONFIG_DIRS for p in (REPO / d).glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_configs_select_the_lowest_validation_loss(path):
    """As the paper and the official code: keep the checkpoint with the lowest validation loss;
    the JMCE's is ``<root>/checkpoints/best.ckpt`` and two-stage configs load that file; e2e
    configs use CWAdamW (JMCE lr 1e-4, per-model clip 1) and no global clip."""
    cfg = _load(path)
    assert cfg["checkpoint"]["monitor"] == "val/loss" and cfg["checkpoint"]["mode"] == "min"
    init = cfg["model"]["forecaster"]["init_args"]
    if path.parent.name == "jmce":
        assert cfg["checkpoint"]["filename"] == "best"
        return
    if init.get("training") == "e2e" and init.get("prior", "jmce") == "jmce":
        opt = cfg["model"]["optimizer"]
        assert opt["class_path"] == "probforecast.models.cwgen.CWAdamW"
        assert opt["init_args"]["jmce_lr"] == 1e-4 and opt["init_args"]["max_norm"] == 1.0
        assert cfg["trainer"].get("gradient_clip_val") is None
    if (init.get("jmce") or {}).get("checkpoint") is not None:
        dataset = path.name.replace("_raw", "").removeprefix("timediff_").removeprefix("flowts_")
        jmce_cfg = _load(REPO / "configs/jmce" / dataset)  # base-model configs share the JMCE
        expected = f"{jmce_cfg['trainer']['default_root_dir']}/checkpoints/best.ckpt"
        assert init["jmce"]["checkpoint"] == expected
        for key in ("cov_window", "lambda_min"):
            assert init["jmce"][key] == jmce_cfg["model"]["forecaster"]["init_args"][key]
