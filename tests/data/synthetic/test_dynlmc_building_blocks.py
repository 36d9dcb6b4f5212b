"""DynLMC building blocks against closed forms: the AR(1) stationary law (Monte-Carlo), the
sticky HMM's switching law (counting), a numerically safe softmax (scipy), and the
configuration checks at their boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from probforecast.data.synthetic.dynlmc import (
    DynLMCConfig,
    ar1_paths,
    softmax,
    sticky_hmm,
    with_overrides,
)


def test_ar1_paths_start_stationary():
    """``a_0 ~ N(0, sigma^2 / (1 - rho^2))`` and ``Cov(a_0, a_1) = rho Var``: 40k paths, the
    sample variances within 5 % (standard error about 0.7 %)."""
    rho, sigma = 0.9, 0.5
    paths = ar1_paths(np.random.default_rng(0), (200, 200), 3, rho, sigma).reshape(-1, 3)
    var = sigma**2 / (1 - rho**2)
    np.testing.assert_allclose(paths.var(0), [var, var, var], rtol=0.05)
    cov01 = np.mean(paths[:, 0] * paths[:, 1])
    assert abs(cov01 - rho * var) < 0.05 * var
    # one step: the single value is already the stationary draw
    one = ar1_paths(np.random.default_rng(1), (40000,), 1, rho, sigma)
    assert one.shape == (40000, 1)
    assert abs(one.var() / var - 1) < 0.05
    # the recursion exactly: a_t = rho a_{t-1} + sigma eps_t along the last axis
    eps = sigma * np.random.default_rng(2).standard_normal((2, 3, 5))
    eps[..., 0] /= np.sqrt(1 - rho**2)
    want = np.zeros_like(eps)
    want[..., 0] = eps[..., 0]
    for t in range(1, 5):
        want[..., t] = rho * want[..., t - 1] + eps[..., t]
    np.testing.assert_allclose(ar1_paths(np.random.default_rng(2), (2, 3), 5, rho, sigma), want)


def test_ar1_paths_of_length_zero():
    assert ar1_paths(np.random.default_rng(0), (2, 3), 0, 0.9, 1.0).shape == (2, 3, 0)


def test_sticky_hmm_moves_uniformly_to_the_other_states():
    """Off the diagonal the transition is uniform on the ``K - 1`` other states: the step
    ``(s_t - s_{t-1}) mod K`` of the switches is uniform on ``1..K-1`` (chi-square)."""
    k = 4
    states = sticky_hmm(np.random.default_rng(0), 6000, k, 0.5)
    steps = np.diff(states) % k
    moves = steps[steps != 0]
    assert abs(len(moves) / len(steps) - 0.5) < 0.03  # P(switch) = 1 - kappa
    counts = np.bincount(moves, minlength=k)[1:]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sticky_hmm_with_stickiness_one_never_switches():
    for seed in range(20):
        states = sticky_hmm(np.random.default_rng(seed), 50, 3, 1.0)
        assert np.all(states == states[0])
    firsts = [sticky_hmm(np.random.default_rng(s), 5, 3, 1.0)[0] for s in range(600)]
    assert stats.chisquare(np.bincount(firsts, minlength=3)).pvalue > 1e-3  # uniform start


def test_softmax_is_stable_per_slice():
    logits = np.array(
        [[[0.0, 1.0, -2.0], [1000.0, 1001.0, 999.0]], [[-1000.0, -999.0, -1001.0], [5.0, 5.0, 5.0]]]
    )
    for axis in (1, 2):
        got = softmax(logits, axis=axis)
        np.testing.assert_allclose(got, special.softmax(logits, axis=axis), rtol=1e-12)
        assert np.all(np.isfinite(got))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"rho": (-1.0, 0.5)}, "rho range"),
        ({"rho": (-1.5, 0.5)}, "rho range"),
        ({"logit_std": (2.0, 1.0)}, "logit_std must be"),
        ({"tau_max": (3, 1)}, "tau_max must be"),
        ({"n_regimes": (4, 3)}, "n_regimes must be"),
        ({"stickiness": 1.5}, "stickiness must lie"),
        ({"weights": "dirichlet"}, "weights must be"),
    ],
)
def test_config_check_rejects(changes, match):
    with pytest.raises(ValueError, match=match):
        DynLMCConfig(**changes).check()


@pytest.mark.parametrize(
    "changes",
    [
        {"rho": (-0.99, 0.5)},
        {"n_regimes": (3, 3)},
        {"stickiness": 0.0},
        {"stickiness": 1.0},
        {"logit_std": (0.0, 0.0)},
        {"tau_max": (2, 2)},
    ],
)
def test_config_check_accepts_the_closed_ends(changes):
    DynLMCConfig(**changes).check()


def test_with_overrides_names_the_presets():
    assert with_overrides("regime", stickiness=0.5).stickiness == 0.5
    with pytest.raises(
        ValueError, match=r"no preset 'spiky'; expected one of \['drift', 'lag', 'regime'\]"
    ):
        with_overrides("spiky")
