"""The paper's ProbMSE / ProbMAE (per-sample errors averaged over samples) vs numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probforecast.metrics import ProbMAE, ProbMSE, build_metric_collection
from probforecast.metrics.functional import mse, prob_mae, prob_mse


def numpy_reference(samples, target, mask):
    sq, ab, count = 0.0, 0.0, 0
    b, s, q, n = samples.shape
    for i in range(b):
        for t in range(q):
            for j in range(n):
                if not mask[i, t, j]:
                    continue
                errs = [samples[i, k, t, j] - target[i, t, j] for k in range(s)]
                sq += np.mean(np.square(errs))
                ab += np.mean(np.abs(errs))
                count += 1
    return sq / count, ab / count


def data(seed=0):
    g = np.random.default_rng(seed)
    samples = g.normal(size=(4, 9, 5, 3))
    target = g.normal(size=(4, 5, 3))
    mask = g.random((4, 5, 3)) > 0.3
    target[~mask] = np.nan  # unobserved targets are ignored, NaN included
    return samples, target, mask


def test_functional_matches_numpy_and_the_variance_identity():
    samples, target, mask = data()
    s, y, m = map(torch.from_numpy, (samples, target, mask))
    ref_mse, ref_mae = numpy_reference(samples, target, mask)
    assert prob_mse(s, y, mask=m).item() == pytest.approx(ref_mse, rel=1e-12)
    assert prob_mae(s, y, mask=m).item() == pytest.approx(ref_mae, rel=1e-12)
    # ProbMSE = MSE of the sample mean + mean (biased) sample variance over observed entries
    var = samples.var(axis=1)[mask].mean()
    assert prob_mse(s, y, mask=m).item() == pytest.approx(mse(s, y, mask=m).item() + var, rel=1e-10)


def test_metric_states_are_sums_independent_of_batching():
    samples, target, mask = data(seed=1)
    s, y, m = map(torch.from_numpy, (samples, target, mask))
    ref_mse, ref_mae = numpy_reference(samples, target, mask)
    metrics = build_metric_collection(metrics=["prob_mse", "prob_mae"])
    for rows in (slice(0, 1), slice(1, 4)):
        metrics.update(s[rows], y[rows], mask=m[rows])
    out = metrics.compute()
    assert out["prob_mse"].item() == pytest.approx(ref_mse, rel=1e-12)
    assert out["prob_mae"].item() == pytest.approx(ref_mae, rel=1e-12)
    assert isinstance(metrics["prob_mse"], ProbMSE) and isinstance(metrics["prob_mae"], ProbMAE)
    assert torch.isnan(ProbMSE().compute())
    with pytest.raises(ValueError, match=r"samples \[B, S, Q, N\]"):
        prob_mse(s[0], y)
