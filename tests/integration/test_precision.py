"""Mixed precision: every registered forecaster trains one step and evaluates under
``bf16-mixed`` on CPU (``16-mixed`` on GPU is the same code path with a grad scaler; it runs
when a GPU is present). Linear algebra that needs float32/64 (Cholesky, eigh, solves) must be
promoted locally, so no bfloat16 reaches it and the metrics stay finite."""

from __future__ import annotations

import math
import warnings

import lightning.pytorch as pl
import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models.module import ForecastModule
from tests.models.test_conformance import FORECASTERS, build

PRECISIONS = ["bf16-mixed"] + (["16-mixed"] if torch.cuda.is_available() else [])
# Known gaps, owned by the model's author (strict: the entry must go once the model is fixed).
KNOWN_GAPS: dict[str, str] = {}


def _params():
    for name in sorted(FORECASTERS):
        marks = ()
        if name in KNOWN_GAPS:
            marks = pytest.mark.xfail(
                reason=KNOWN_GAPS[name], raises=NotImplementedError, strict=True
            )
        yield pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module")
def datamodule():
    dm = ForecastDataModule(
        "synthetic",
        context_length=48,
        prediction_length=12,
        batch_size=4,
        eval_batch_size=3,
        num_batches_per_epoch=2,
        synthetic=SyntheticOptions(num_series=5, length=500, num_test_windows=2),
    )
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list(_params()))
def test_fit_and_test_under_mixed_precision(name, precision, datamodule):
    warnings.simplefilter("ignore")
    pl.seed_everything(0)
    module = ForecastModule(build(name, datamodule), num_samples=4, sample_seed_scope="batch")
    trainer = pl.Trainer(
        accelerator="gpu" if precision == "16-mixed" else "cpu",
        precision=precision,
        max_steps=1,
        limit_val_batches=1,
        limit_test_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule)
    (result,) = trainer.test(module, datamodule, verbose=False)
    assert "test/crps" in result
    bad = {k: v for k, v in result.items() if not math.isfinite(v)}
    assert not bad, f"non-finite metrics under {precision}: {bad}"
    for p in module.parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all()  # master weights stay fp32
