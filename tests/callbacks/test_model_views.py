"""Plot helpers of ``probforecast.viz.model_views`` hold exactly the data given, and the GLS
views show a C_t that is the kernel-mixture formula of the plotted weights (numpy loop)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.data.batch import collate_windows
from probforecast.models import GPVar
from probforecast.viz import horizon_lines, matrix_heatmaps, mixture_weights_chart
from probforecast.viz.model_views import gls_views


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_matrix_heatmaps_hold_the_matrices_on_a_symmetric_scale():
    rng = np.random.default_rng(0)
    mats = rng.normal(size=(2, 5, 5))
    fig = matrix_heatmaps(mats, ["a", "b"], labels=list("vwxyz"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    for image, mat in zip(images, mats, strict=True):
        np.testing.assert_array_equal(image.get_array(), mat)
        lo, hi = image.get_clim()
        assert lo == -hi == -np.abs(mats).max()
    with pytest.raises(ValueError, match=r"\[K, D, D\]"):
        matrix_heatmaps(mats[0], ["a"])
    with pytest.raises(ValueError, match="need 2 titles"):
        matrix_heatmaps(mats, ["a"])


def test_mixture_weights_chart_stacks_every_component():
    weights = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    fig = mixture_weights_chart(weights, ["SE 1", "SE 2", "identity"])
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SE 1", "SE 2", "identity"]
    with pytest.raises(ValueError, match="need 3 labels"):
        mixture_weights_chart(weights, ["x"])


def test_horizon_lines_one_panel_per_series():
    values = np.arange(12.0).reshape(2, 3, 2)  # [L=2, Q=3, K=2]
    fig = horizon_lines(values, ["s0", "s1"], "sigma")
    for k in range(2):
        ydata = [line.get_ydata() for line in fig.axes[k].lines]
        np.testing.assert_array_equal(np.stack(ydata), values[:, :, k])
    with pytest.raises(ValueError, match="need 2 titles"):
        horizon_lines(values, ["s0"], "sigma")


def _kernel_correlation_loop(weights: np.ndarray, scales: list[float], d: int) -> np.ndarray:
    """C_ij = sum_m w_m exp(-(i - j)^2 / l_m^2) + w_M 1{i = j}, element by element."""
    out = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            kernels = zip(weights[:-1], scales, strict=True)
            out[i, j] = sum(w * np.exp(-((i - j) ** 2) / ls**2) for w, ls in kernels)
            out[i, j] += weights[-1] * (i == j)
    return out


def _window(p: int, q: int, n: int):
    dm = ForecastDataModule(
        "synthetic",
        context_length=p,
        prediction_length=q,
        synthetic=SyntheticOptions(num_series=n, length=300, num_test_windows=1),
    )
    dm.setup("test")
    return dm, collate_windows([dm.test_dataloader().dataset[0]])


def test_gls_views_show_the_kernel_mixture_of_the_plotted_weights():
    torch.manual_seed(0)
    p, q, n = 40, 6, 3
    dm, batch = _window(p, q, n)
    facts = (dm.target_dim, p, q, dm.freq, dm.num_time_features)
    model = GPVar(
        *facts,
        hidden_size=8,
        rank=2,
        lags=[1, 2],
        likelihood="gls",
        num_components=3,
        learn_lengthscales=True,
    ).eval()
    views = model.diagnostic_figures(batch)
    assert set(views) == {"gls_correlation", "gls_mixture_weights"}
    heatmaps = [ax.images[0].get_array() for ax in views["gls_correlation"].axes if ax.images]
    assert len(heatmaps) == 2, "first and last horizon step"
    stacks = views["gls_mixture_weights"].axes[0].collections
    # stackplot polygon of component m: start, lower edge (Q points), end, upper edge reversed
    # (Q points); the upper edge of m minus that of m-1 is w_m at every step
    tops = [np.asarray(c.get_paths()[0].vertices)[q + 2 : 2 * q + 2, 1][::-1] for c in stacks]
    weights = np.diff(np.vstack([np.zeros(q), *tops]), axis=0).T  # [Q, M]
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    scales = model.correlation.lengthscales.tolist()
    for heatmap, step in zip(heatmaps, (0, q - 1), strict=True):
        expected = _kernel_correlation_loop(weights[step], scales, q)
        np.testing.assert_allclose(np.asarray(heatmap), expected, atol=1e-5)
        np.testing.assert_allclose(np.diag(heatmap), 1.0, atol=1e-5)

    independent = GPVar(*facts, hidden_size=8, rank=2, lags=[1, 2], likelihood="independent")
    assert independent.diagnostic_figures(batch) == {}


def test_gls_views_of_the_ar_correlation_have_no_weights():
    p, q, n = 40, 4, 2
    dm, batch = _window(p, q, n)
    model = GPVar(
        dm.target_dim,
        p,
        q,
        dm.freq,
        dm.num_time_features,
        hidden_size=8,
        rank=2,
        lags=[1],
        likelihood="gls",
        correlation="ar",
        ar_order=1,
    ).eval()
    views = model.diagnostic_figures(batch)
    assert set(views) == {"gls_correlation"}
    (first, last) = [ax.images[0].get_array() for ax in views["gls_correlation"].axes if ax.images]
    # AR(1) Toeplitz correlation: C_ij = phi^|i-j|
    phi = first[0, 1]
    np.testing.assert_allclose(
        first, phi ** np.abs(np.subtract.outer(range(q), range(q))), atol=1e-5
    )
    assert gls_views(np.stack([np.eye(3)]))["gls_correlation"].axes[0].images


def test_views_are_taken_from_forecasters_that_override_the_contract_hook():
    """``ModelViews`` asks only forecasters that override ``Forecaster.diagnostic_figures``
    (the contract's default returns no figure); anything else is skipped."""
    from probforecast.callbacks.model_views import _has_views
    from probforecast.models import GPVar, SeasonalNaive

    assert _has_views(GPVar(3, 40, 6, lags=[1, 2], likelihood="gls"))
    naive = SeasonalNaive(3, 40, 6)
    assert not _has_views(naive) and naive.diagnostic_figures(None) == {}
    assert not _has_views(object())
