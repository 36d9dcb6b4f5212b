"""The JMCE Sigma-hat view (JMCE and CW generators with the JMCE prior) and VolDy-VAE's sigma view
plot exactly what the models compute for the window they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import JMCE, CWFlow, JMCESpec, VolDyVAE

JMCE_SIZES = {"cov_window": 15, "d_model": 8, "n_heads": 2, "d_ff": 16, "e_layers": 1}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def dm():
    dm = ForecastDataModule(
        "synthetic",
        context_length=48,
        prediction_length=24,
        eval_batch_size=1,
        synthetic=SyntheticOptions(num_series=3, length=400, num_test_windows=2),
    )
    dm.setup("test")
    return dm


def _facts(dm):
    return (dm.target_dim, dm.context_length, dm.prediction_length, dm.freq, dm.num_time_features)


def _images(fig) -> list[np.ndarray]:
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def test_jmce_view_shows_sigma_hat_at_the_first_and_last_step(dm):
    torch.manual_seed(0)
    model = JMCE(*_facts(dm), **JMCE_SIZES).eval()
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        figures = model.diagnostic_figures(batch)
        _, _, cov = model.estimate(batch)
    images = _images(figures["jmce_sigma"])
    assert len(images) == 2
    np.testing.assert_allclose(images[0], cov[0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(images[1], cov[0, -1].numpy(), rtol=1e-6)


def test_cw_generator_shows_its_prior_and_raw_shows_nothing(dm):
    torch.manual_seed(0)
    sizes = {"d_model": 8, "n_heads": 2, "sampling_steps": 2}
    e2e = CWFlow(
        *_facts(dm), prior="jmce", training="e2e", whitening="cholesky",
        jmce=JMCESpec(cov_window=15, d_model=8, n_heads=2, e_layers=1), **sizes,
    ).eval()  # fmt: skip
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        images = _images(e2e.diagnostic_figures(batch)["jmce_sigma"])
        _, _, cov = e2e.jmce.estimate(batch)
    np.testing.assert_allclose(images[1], cov[0, -1].numpy(), rtol=1e-6)
    assert CWFlow(*_facts(dm), prior="standard", **sizes).diagnostic_figures(batch) == {}


def test_voldy_view_shows_sigma_quantiles_over_latent_draws(dm):
    torch.manual_seed(0)
    model = VolDyVAE(*_facts(dm), latent_dim=8, mlp_hidden=16).eval()
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        torch.manual_seed(1)
        fig = model.diagnostic_figures(batch, num_draws=16)["voldy_sigma"]
        torch.manual_seed(1)
        scale = model.predictive_scale(batch, 16)[0]  # [S, H, C], the same draws
    expected = np.quantile(scale.numpy(), [0.1, 0.5, 0.9], axis=0)  # [3, H, C]
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == dm.target_dim
    for k, ax in enumerate(panels):
        for level, line in enumerate(ax.lines[:3]):
            np.testing.assert_allclose(line.get_ydata(), expected[level, :, k], rtol=1e-5)
    mse = VolDyVAE(*_facts(dm), latent_dim=8, mlp_hidden=16, objective="mse")
    assert mse.diagnostic_figures(batch) == {}
