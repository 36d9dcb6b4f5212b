"""``SampleNoise``: one random stream per window, checked against plain seeded generators."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from probforecast.models.noise import SampleNoise
from probforecast.models.voldy.likelihoods import sample_noise


def test_window_slice_is_the_draw_of_that_windows_own_generator():
    noise = SampleNoise.per_window([3, 5])
    out = noise.randn((4, 2, 6), window_dim=1, dtype=torch.float64)
    for b, seed in enumerate([3, 5]):
        expected = torch.randn(
            4, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        assert torch.equal(out[:, b], expected)
    again = noise.rand((2, 3))  # the streams advance: a second draw continues each stream
    gen = torch.Generator().manual_seed(5)
    torch.randn(4, 6, generator=gen, dtype=torch.float64)
    assert torch.equal(again[1], torch.rand(3, generator=gen))


def test_global_rng_draws_the_whole_shape_from_the_seeded_global_stream():
    torch.manual_seed(9)
    out = SampleNoise.global_rng(3).randn((2, 3, 4), window_dim=1)
    torch.manual_seed(9)
    assert torch.equal(out, torch.randn(2, 3, 4))


def test_multinomial_rows_come_from_each_windows_generator():
    weights = torch.tensor([[[1.0, 0.0, 3.0]], [[0.0, 2.0, 0.0]]])  # [B=2, M=1, K=3]
    out = SampleNoise.per_window([1, 2]).multinomial(weights, 500)
    assert out.shape == (2, 1, 500)
    assert set(out[1].unique().tolist()) == {1}
    assert set(out[0].unique().tolist()) == {0, 2}
    assert (out[0] == 2).float().mean().item() == pytest.approx(0.75, abs=0.06)
    expected = torch.multinomial(
        weights[0], 500, replacement=True, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(out[0], expected)


def test_standard_gamma_is_per_window_and_keeps_the_outer_global_stream():
    alpha = torch.full((2, 20_000), 2.5, dtype=torch.float64)
    torch.manual_seed(0)
    before = torch.rand(())
    torch.manual_seed(0)
    a = SampleNoise.per_window([4, 8]).standard_gamma(alpha)
    assert torch.equal(torch.rand(()), before)  # the global RNG was forked, not advanced
    b = SampleNoise.per_window([4, 9]).standard_gamma(alpha)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    assert stats.kstest(a[0].numpy(), stats.gamma(2.5).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("kind", "law"),
    [("laplace", stats.laplace(scale=1.0)), ("student_t", stats.t(df=3.5))],
)
def test_likelihood_draws_have_the_likelihoods_law(kind, law):
    """The transformations in ``sample_noise`` (uniform -> Laplace, normal / chi -> Student-t)
    against scipy's CDF; loc 0 and scale 1 so the draws are the standard law."""
    loc = torch.zeros(2, 30_000, dtype=torch.float64)
    df = torch.tensor(3.5, dtype=torch.float64)
    draws = sample_noise(kind, loc, torch.ones_like(loc), df, SampleNoise.per_window([1, 2]))
    assert torch.isfinite(draws).all()
    for row in draws:
        assert stats.kstest(row.numpy(), law.cdf).pvalue > 1e-3


def test_shape_and_batch_errors_name_what_was_expected():
    noise = SampleNoise.per_window([1, 2])
    with pytest.raises(ValueError, match=r"axis 1 of the requested shape \[2, 3\] must be"):
        noise.randn((2, 3), window_dim=1)
    with pytest.raises(ValueError, match="built for 2 windows; the batch has 3"):
        SampleNoise.resolve(noise, 3)
    with pytest.raises(ValueError, match="one generator per window"):
        SampleNoise(3, noise.generators)
    with pytest.raises(ValueError, match=r"weights \[B=2, M, K\]"):
        noise.multinomial(torch.ones(2, 3), 4)


def _gaussian_rnn_batch(b: int = 3, p: int = 24, q: int = 6, n: int = 2):
    from probforecast.data.batch import ForecastBatch
    from probforecast.models import GaussianRNN

    gen = torch.Generator().manual_seed(0)
    batch = ForecastBatch(
        torch.randn(b, p, n, generator=gen),
        torch.ones(b, p, n, dtype=torch.bool),
        torch.randn(b, p, 1, generator=gen),
        torch.randn(b, q, 1, generator=gen),
        torch.randn(b, q, n, generator=gen),
        torch.ones(b, q, n, dtype=torch.bool),
        torch.arange(n).expand(b, n).clone(),
        torch.zeros(b, n),
        torch.ones(b, n),
        torch.tensor([30, 31, 45])[:b],
    )
    model = GaussianRNN(n, p, q, num_time_features=1, hidden_size=8).eval()
    return model, batch


def test_module_samples_a_batch_in_one_call_with_the_per_window_loops_samples():
    """``sample_seed_scope="window"``: one ``sample`` call for the batch; every window gets the
    samples of the per-window loop (one call per window on the re-seeded global RNG)."""
    from probforecast.models.module import ForecastModule

    model, batch = _gaussian_rnn_batch()
    module = ForecastModule(model, num_samples=4, sample_seed_scope="window")
    calls = []
    original = model.sample
    model.sample = lambda b, n, noise=None: calls.append(b.batch_size) or original(b, n, noise)
    with torch.no_grad():
        batched = module.draw_samples(batch, 4)
        assert calls == [3]
        model.per_window_noise = False
        loop = module.draw_samples(batch, 4)
        assert calls == [3, 1, 1, 1]
        alone = module.draw_samples(batch.select_windows(slice(2, 3)), 4)
    torch.testing.assert_close(batched, loop, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched[2:], alone, rtol=1e-5, atol=1e-6)
