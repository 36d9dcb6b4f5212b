"""Numerical faults: NaN/Inf losses stop training with a message naming the part and the
batch; the sampler never returns NaN; Cholesky failures are jittered, counted and logged; bf16
input is factorised in float32. Plus per-window sample seeding (what makes DDP evaluation equal
one process): results do not depend on the evaluation batch size."""

from __future__ import annotations

import math
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.distributions._cholesky import jitter_counts, reset_jitter_counts, safe_cholesky
from probforecast.models import GaussianRNN, SeasonalNaive
from probforecast.models.base import Forecaster
from probforecast.models.module import ForecastModule, NonFiniteError


@pytest.fixture(scope="module")
def dm():
    dm = ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=6,
        batch_size=4,
        eval_batch_size=4,
        num_batches_per_epoch=3,
        synthetic=SyntheticOptions(num_series=3, length=300, num_test_windows=5),
    )
    dm.setup("fit")
    return dm


def facts(dm) -> dict:
    return {
        "target_dim": dm.target_dim,
        "context_length": dm.context_length,
        "prediction_length": dm.prediction_length,
        "freq": dm.freq,
        "num_time_features": dm.num_time_features,
    }


def trainer(**kwargs) -> pl.Trainer:
    warnings.simplefilter("ignore")
    defaults = dict(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return pl.Trainer(**{**defaults, **kwargs})


def test_nan_parameter_stops_training_naming_the_parameter_and_batch(dm):
    forecaster = GaussianRNN(**facts(dm), hidden_size=4, num_layers=1)
    with torch.no_grad():
        forecaster.rnn.weight_hh_l0[0, 0] = float("nan")
    with pytest.raises(NonFiniteError) as info:
        trainer().fit(ForecastModule(forecaster, num_samples=4), dm)
    message = str(info.value)
    assert "GaussianRNN.loss" in message and "at epoch 0, batch 0, step 0" in message
    assert "non-finite parameters: rnn.weight_hh_l0" in message and "window starts" in message


class Overflowing(Forecaster):
    """Finite parameters and inputs, but the forward pass overflows float32."""

    def __init__(self, **facts):
        super().__init__(**facts)
        self.head = nn.Linear(1, 1)

    def loss(self, batch):
        return self.head(batch.past_target[..., :1]).exp().mul(1e38).sum() * 1e38

    def sample(self, batch, num_samples):
        raise NotImplementedError


def test_overflowing_loss_says_the_forward_pass_overflowed(dm):
    with pytest.raises(NonFiniteError, match="inputs are finite, so the forward pass overflowed"):
        trainer().fit(ForecastModule(Overflowing(**facts(dm)), num_samples=4), dm)


class NaNSampler(SeasonalNaive):
    def sample(self, batch, num_samples):
        samples = super().sample(batch, num_samples)
        samples[0, 0, 0, 0] = float("nan")
        return samples


def test_sampler_returning_nan_raises_naming_the_windows(dm):
    module = ForecastModule(NaNSampler(**facts(dm)), num_samples=4)
    with pytest.raises(NonFiniteError, match=r"NaNSampler.sample returned NaN/Inf for windows"):
        trainer().test(module, dm)


# ---------------------------------------------------------------------- Cholesky
def test_jitter_is_counted_and_bf16_is_factorised_in_float32(caplog):
    reset_jitter_counts()
    spd = torch.tensor([[4.0, 2.0], [2.0, 3.0]], dtype=torch.float64)
    singular = torch.ones(2, 2, dtype=torch.float64)  # rank one: needs a jitter
    result = safe_cholesky(torch.stack([spd, singular, singular]), name="test matrix")
    assert result.jittered.tolist() == [False, True, True]
    assert jitter_counts() == {"test matrix": 2}
    torch.testing.assert_close(result.tril[0], torch.linalg.cholesky(spd))
    torch.testing.assert_close(result.tril[0] @ result.tril[0].T, spd)

    half = safe_cholesky(spd.to(torch.bfloat16), name="bf16 matrix")
    assert half.tril.dtype == torch.float32
    torch.testing.assert_close(half.tril.double(), torch.linalg.cholesky(spd), atol=2e-2, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = safe_cholesky(spd.float() @ torch.eye(2), name="autocast matrix")  # bf16 matmul
    assert auto.tril.dtype == torch.float32 and torch.isfinite(auto.tril).all()


class NeedsJitter(SeasonalNaive):
    """Calls the GLS Cholesky on one singular 2x2 matrix per training batch."""

    def loss(self, batch):
        safe_cholesky(torch.ones(1, 2, 2), name="singular")
        return super().loss(batch)


def test_module_logs_the_jitter_count_per_epoch(dm):
    module = ForecastModule(NeedsJitter(**facts(dm)), num_samples=4)
    tr = trainer(limit_val_batches=0)
    tr.fit(module, dm)
    assert (
        float(tr.callback_metrics["train/diagnostics/cholesky_jitter"]) == dm.num_batches_per_epoch
    )


# ---------------------------------------------------------------------- per-window seeding
def _test_metrics(dm, scope: str, eval_batch_size: int) -> dict[str, float]:
    torch.manual_seed(0)
    forecaster = GaussianRNN(**facts(dm), hidden_size=4, num_layers=1)
    module = ForecastModule(forecaster, num_samples=6, sample_seed_scope=scope)
    dm.eval_batch_size = eval_batch_size
    try:
        (result,) = trainer().test(module, dm, verbose=False)
    finally:
        dm.eval_batch_size = 4
    return result


def test_window_seeding_makes_metrics_independent_of_the_batching(dm):
    """The property behind DDP = 1 process: a window's samples do not depend on its batch."""
    a = _test_metrics(dm, "window", 4)
    b = _test_metrics(dm, "window", 2)
    assert a.keys() == b.keys()
    for key in a:
        assert math.isclose(a[key], b[key], rel_tol=1e-6, abs_tol=1e-7), key
    # control: seeding per batch does depend on the batching
    c = _test_metrics(dm, "batch", 4)
    d = _test_metrics(dm, "batch", 2)
    assert not math.isclose(c["test/crps"], d["test/crps"], rel_tol=1e-6)


def test_bad_seed_scope_is_rejected(dm):
    with pytest.raises(ValueError, match="sample_seed_scope must be 'window' or 'batch'"):
        ForecastModule(SeasonalNaive(**facts(dm)), sample_seed_scope="rank")
