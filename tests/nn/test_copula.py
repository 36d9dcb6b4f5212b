"""GPVar's Gaussian-copula marginal transform against a per-column numpy/scipy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from probforecast.models.gls.copula import EmpiricalCopula, winsorization_level


def _reference_to_gaussian(context: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One column: Winsorised ECDF of ``context`` at ``x``, through the normal quantile."""
    m = context.size
    delta = 1.0 / (4.0 * m**0.25 * math.sqrt(math.pi * math.log(m)))
    cdf = np.searchsorted(np.sort(context), x, side="right") / m
    return stats.norm.ppf(np.clip(cdf, delta, 1.0 - delta))


def test_winsorization_level_is_gpvar_eq9():
    m = torch.tensor([24.0, 100.0])
    expected = [1.0 / (4 * v**0.25 * math.sqrt(math.pi * math.log(v))) for v in (24.0, 100.0)]
    torch.testing.assert_close(winsorization_level(m), torch.tensor(expected, dtype=torch.float64))


def test_to_gaussian_matches_the_columnwise_reference():
    g = torch.Generator().manual_seed(0)
    context = torch.randn(3, 40, 4, generator=g, dtype=torch.float64).exp()  # skewed marginals
    query = torch.randn(3, 7, 4, generator=g, dtype=torch.float64).exp()
    copula = EmpiricalCopula.fit(context, torch.ones_like(context, dtype=torch.bool))
    got = copula.to_gaussian(query).numpy()
    for b in range(3):
        for n in range(4):
            ref = _reference_to_gaussian(context[b, :, n].numpy(), query[b, :, n].numpy())
            np.testing.assert_allclose(got[b, :, n], ref, rtol=1e-12, atol=1e-12)


def test_unobserved_context_values_are_ignored():
    g = torch.Generator().manual_seed(1)
    context = torch.randn(1, 30, 2, generator=g, dtype=torch.float64)
    observed = torch.rand(1, 30, 2, generator=g) > 0.3
    query = torch.linspace(-2, 2, 9, dtype=torch.float64)[None, :, None].expand(1, 9, 2)
    got = EmpiricalCopula.fit(context, observed).to_gaussian(query)
    for n in range(2):
        kept = context[0, observed[0, :, n], n].numpy()
        ref = _reference_to_gaussian(kept, query[0, :, n].numpy())
        np.testing.assert_allclose(got[0, :, n].numpy(), ref, rtol=1e-12)


def test_inverse_round_trips_every_unclipped_context_value():
    g = torch.Generator().manual_seed(2)
    context = torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
    copula = EmpiricalCopula.fit(context, torch.ones_like(context, dtype=torch.bool))
    z = copula.to_gaussian(context)  # [B, P, N]
    back = copula.from_gaussian(z.unsqueeze(1)).squeeze(1)
    rank = context.argsort(dim=1).argsort(dim=1) + 1  # k of x_(k)
    delta = float(winsorization_level(torch.tensor(50.0)))
    clipped = (rank / 50 < delta) | (rank / 50 > 1 - delta)  # the extremes: CDF clipped
    assert 0 < clipped.sum() < clipped.numel() // 10
    torch.testing.assert_close(back[~clipped], context[~clipped], rtol=0, atol=1e-10)


def test_inverse_of_standard_normal_draws_follows_the_context_distribution():
    g = torch.Generator().manual_seed(3)
    context = torch.distributions.Gamma(2.0, 1.0).sample((1, 400, 1)).double()
    copula = EmpiricalCopula.fit(context, torch.ones_like(context, dtype=torch.bool))
    draws = copula.from_gaussian(torch.randn(1, 4000, 1, 1, generator=g, dtype=torch.float64))
    assert draws.min() >= context.min() and draws.max() <= context.max()
    ks = stats.ks_2samp(draws.flatten().numpy(), context.flatten().numpy())
    assert ks.pvalue > 0.01, ks


def test_a_series_without_observations_maps_to_a_constant():
    context = torch.zeros(1, 10, 1)
    copula = EmpiricalCopula.fit(context, torch.zeros_like(context, dtype=torch.bool))
    z = copula.to_gaussian(torch.tensor([[[-1.0], [3.0]]]))
    assert torch.isfinite(z).all()
    back = copula.from_gaussian(torch.randn(1, 5, 2, 1))
    torch.testing.assert_close(back, torch.zeros_like(back))


@pytest.mark.parametrize("model", ["gpvar", "transformer"])
def test_copula_forecaster_samples_stay_in_each_windows_context_range(model):
    from probforecast.data import ForecastDataModule, SyntheticOptions
    from probforecast.models import GPVar, TransformerForecaster

    dm = ForecastDataModule(
        "synthetic",
        context_length=30,
        prediction_length=6,
        eval_batch_size=2,
        synthetic=SyntheticOptions(num_series=3, length=200, num_test_windows=2),
    )
    dm.setup("test")
    cls = GPVar if model == "gpvar" else TransformerForecaster
    torch.manual_seed(0)
    net = cls(
        dm.target_dim, dm.context_length, dm.prediction_length, dm.freq, dm.num_time_features,
        hidden_size=8, rank=2, lags=[1, 2], likelihood="gls", marginal="copula",
    )  # fmt: skip
    batch = next(iter(dm.test_dataloader()))
    loss = net.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    samples = net.sample(batch, 20)  # [B, S, Q, N]
    low = batch.past_target.min(dim=1).values[:, None, None]
    high = batch.past_target.max(dim=1).values[:, None, None]
    assert ((samples >= low - 1e-6) & (samples <= high + 1e-6)).all()


def test_winsorization_level_below_two_observations_uses_m_equal_two():
    """``m < 2`` (one observation, or an empty series counted as one) takes ``delta_2``."""
    delta_2 = 1.0 / (4 * 2**0.25 * math.sqrt(math.pi * math.log(2.0)))
    got = winsorization_level(torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(got, torch.full((2,), delta_2, dtype=torch.float64))


def test_an_empty_series_leaves_the_other_series_marginals_intact():
    """The empty-series patch touches only the empty series: the observed series beside it
    keeps every context value as its order statistics."""
    context = torch.tensor([[[0.0, 3.0], [0.0, -1.0], [0.0, 7.0], [0.0, 2.0]]])  # [1, P=4, N=2]
    observed = torch.tensor([[[False, True]] * 4])
    copula = EmpiricalCopula.fit(context, observed)
    torch.testing.assert_close(copula.sorted_values[0, 1], torch.tensor([-1.0, 2.0, 3.0, 7.0]))
    assert copula.count.tolist() == [[1, 4]] and copula.sorted_values[0, 0, 0] == 0.0


def test_inverse_tails_are_the_context_minimum_and_maximum():
    """Far in either tail the quantile function is constant at ``x_(1)`` and ``x_(m)`` (at
    ``z = 5`` the upper tail is still 1e-5 inside: ``u = Phi(5) < 1`` interpolates towards
    ``x_(m)``, as the docstring's quantile function says)."""
    g = torch.Generator().manual_seed(3)
    context = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    copula = EmpiricalCopula.fit(context, torch.ones_like(context, dtype=torch.bool))
    z = torch.tensor([-8.0, -5.0, 8.0, 10.0], dtype=torch.float64).reshape(1, 4, 1, 1)
    out = copula.from_gaussian(z.expand(2, 4, 1, 3))
    lo, hi = context.amin(1), context.amax(1)  # [B, N]
    for i in range(2):
        torch.testing.assert_close(out[:, i, 0], lo)
        torch.testing.assert_close(out[:, 2 + i, 0], hi)
