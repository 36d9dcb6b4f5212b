"""Synthetic benefit test: on trending, heteroscedastic, cross-correlated windows (large ||mu||),
the JMCE prior beats the N(0, I) ("Raw") prior on CRPS for CW-Diff and CW-Flow, with the same
network, budget and seeds (the spec's test idea §17.11; Theorem 1's regime)."""

from __future__ import annotations

import pytest
import torch

from probforecast.metrics.functional import crps
from probforecast.models import JMCE, CWDiff, CWFlow, JMCESpec
from probforecast.models.module import ForecastModule
from tests.models.cwgen._helpers import SMALL_JMCE, SMALL_NET
from tests.models.cwgen.synthetic_trend import trend_windows

pytestmark = pytest.mark.slow

P, Q, N = 32, 16, 3
FACTS = dict(target_dim=N, context_length=P, prediction_length=Q, num_time_features=0)
JMCE_SIZES = {**SMALL_JMCE, "d_model": 32, "d_ff": 64}
NET_SIZES = {**SMALL_NET, "d_model": 32, "d_ff": 64}
STEPS = 150


def train(model, steps: int = STEPS):
    torch.manual_seed(0)  # the batches' noise (the model was built under build_seeded)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for i in range(steps):
        batch, _, _ = trend_windows(64, P, Q, seed=1000 + i)  # fresh windows every step
        opt.zero_grad()
        model.loss(batch).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval()


def build_seeded(cls, **kwargs):
    """``cls(**kwargs)`` with initial weights that do not depend on the tests run before."""
    torch.manual_seed(0)
    return cls(**kwargs)


@pytest.fixture(scope="module")
def jmce_checkpoint(tmp_path_factory):
    jmce = train(build_seeded(JMCE, **FACTS, cov_window=15, **JMCE_SIZES))
    path = tmp_path_factory.mktemp("jmce") / "jmce.ckpt"
    torch.save({"state_dict": ForecastModule(jmce, num_samples=2).state_dict()}, path)
    return str(path)


@pytest.mark.parametrize(
    ("cls", "extra"), [(CWDiff, {"sampling_steps": 20}), (CWFlow, {"sampling_steps": 10})]
)
def test_cw_prior_beats_the_standard_prior_on_crps(cls, extra, jmce_checkpoint):
    test, _, _ = trend_windows(48, P, Q, seed=7)
    scores = {}
    for prior in ("jmce", "standard"):
        model = build_seeded(
            cls,
            **FACTS,
            prior=prior,
            jmce=JMCESpec(jmce_checkpoint, cov_window=15, **JMCE_SIZES)
            if prior == "jmce"
            else None,
            **NET_SIZES,
            **extra,
        )
        train(model)
        torch.manual_seed(1)
        scores[prior] = crps(model.sample(test, 50), test.future_target).mean().item()
    assert scores["jmce"] < 0.9 * scores["standard"], scores
