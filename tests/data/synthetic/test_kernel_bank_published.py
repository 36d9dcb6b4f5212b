"""The KernelSynth bank against the published list, float64 kernel matrices for any real input
dtype, and cross-covariances ``k(x, y)`` of composite kernels against scalar formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from probforecast.data.synthetic import kernels
from probforecast.data.synthetic.kernels import KERNEL_BANK, Leaf, Node, from_json, kernel_matrix

# The 33 kernels of KernelSynth, written out from Chronos (Ansari et al. 2024, §4.2 / App.;
# amazon-science/chronos-forecasting scripts/kernel-synth.py KERNEL_BANK), as listed in
# ../shared/papers/spec-dynlmc.md §2.3 "Kernel bank" and anchors-seedcode.md §4a:
# ExpSineSquared(periodicity=p/1024) with sklearn's default length_scale 1.0 for these p (in this
# order; p = 4 three times), DotProduct(sigma_0 in 0, 1, 10), RBF(length_scale in 0.1, 1, 10),
# RationalQuadratic(alpha in 0.1, 1, 10; length_scale 1.0), WhiteKernel(noise_level in 0.1, 1)
# and ConstantKernel() (constant_value 1.0).
PUBLISHED_PERIODS = (
    24,
    48,
    96,
    168,
    336,
    672,
    7,
    14,
    30,
    60,
    365,
    730,
    4,
    26,
    52,
    4,
    6,
    12,
    4,
    40,
    10,
)
PUBLISHED = (
    [("ExpSineSquared", (p / 1024, 1.0), f"ExpSineSquared({p}/1024)") for p in PUBLISHED_PERIODS]
    + [("DotProduct", (0.0,), "DotProduct(0.0)")]
    + [("DotProduct", (1.0,), "DotProduct(1.0)")]
    + [("DotProduct", (10.0,), "DotProduct(10.0)")]
    + [("RBF", (0.1,), "RBF(0.1)"), ("RBF", (1.0,), "RBF(1.0)"), ("RBF", (10.0,), "RBF(10.0)")]
    + [
        ("RationalQuadratic", (0.1, 1.0), "RationalQuadratic(0.1)"),
        ("RationalQuadratic", (1.0, 1.0), "RationalQuadratic(1.0)"),
        ("RationalQuadratic", (10.0, 1.0), "RationalQuadratic(10.0)"),
    ]
    + [("White", (0.1,), "WhiteKernel(0.1)"), ("White", (1.0,), "WhiteKernel(1.0)")]
    + [("Constant", (1.0,), "ConstantKernel(1.0)")]
)


@pytest.mark.parametrize("bank", ["built", "module"])
def test_bank_is_the_published_kernelsynth_list(bank):
    # `_bank()` is called here, not only at import, so that its construction itself is checked
    leaves = kernels._bank() if bank == "built" else KERNEL_BANK
    assert isinstance(leaves, tuple) and len(leaves) == 33
    got = [(leaf.kind, leaf.params, leaf.label) for leaf in leaves]
    assert got == PUBLISHED
    for leaf, (_, params, _) in zip(leaves, PUBLISHED, strict=True):
        # exact floats: the period is p / 1024 in the [0, 1] grid units
        assert all(type(v) is float for v in leaf.params) and leaf.params == params


def _naive(kind: str, params: tuple[float, ...], a: float, b: float) -> float:
    """sklearn's formulas per scalar pair, in Python floats."""
    d = abs(a - b)
    if kind == "ExpSineSquared":
        return math.exp(-2.0 * math.sin(math.pi * d / params[0]) ** 2 / params[1] ** 2)
    if kind == "DotProduct":
        return params[0] ** 2 + a * b
    if kind == "RBF":
        return math.exp(-(d**2) / (2 * params[0] ** 2))
    if kind == "RationalQuadratic":
        return (1 + d**2 / (2 * params[0] * params[1] ** 2)) ** (-params[0])
    if kind == "White":
        return params[0] if a == b else 0.0
    return params[0]


@pytest.mark.parametrize("dtype", [np.float32, np.longdouble, np.int64])
@pytest.mark.parametrize("label", ["DotProduct(1.0)", "RBF(0.1)", "ExpSineSquared(7/1024)"])
@pytest.mark.parametrize("side", ["x", "y"])
def test_leaf_matrix_is_float64_of_the_float64_inputs(dtype, label, side):
    """``Leaf.matrix`` documents ``[n, m]`` float64: inputs of any real dtype are first rounded
    to float64 (so a longdouble or float32 grid gives exactly the float64 grid's matrix)."""
    leaf = kernels._BY_LABEL[label]
    rng = np.random.default_rng(0)
    raw = rng.uniform(-3, 3, 7) if dtype is not np.int64 else rng.integers(-3, 4, 7)
    other = np.linspace(-0.3, 1.3, 5)
    odd = np.asarray(raw, dtype=dtype) + (np.longdouble(1) / 3 if dtype is np.longdouble else 0)
    x, y = (odd, other) if side == "x" else (other, odd)
    got = leaf.matrix(x, y)
    assert got.dtype == np.float64
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    want = np.array([[_naive(leaf.kind, leaf.params, float(a), float(b)) for b in ys] for a in xs])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_composite_cross_covariance_matches_scalar_formula():
    """``kernel_matrix(expr, x, y)`` is ``k(x_u, y_v)`` for a nested composite ``expr`` and two
    different point sets (every sub-tree evaluated on ``(x, y)``, not ``(x, x)``)."""
    expr = from_json(
        ["*", ["+", ["*", "DotProduct(1.0)", "RBF(0.1)"], "ExpSineSquared(24/1024)"], "RBF(1.0)"]
    )
    x = np.linspace(-0.2, 1.1, 6)
    y = np.array([0.05, 0.3, 0.95, 1.4])

    def k(e, a, b):
        if isinstance(e, Leaf):
            return _naive(e.kind, e.params, a, b)
        left, right = k(e.left, a, b), k(e.right, a, b)
        return left + right if e.op == "+" else left * right

    want = np.array([[k(expr, a, b) for b in y] for a in x])
    got = kernel_matrix(expr, x, y)
    assert got.shape == (6, 4)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # the transposed call is the transposed matrix, and y defaults to x
    np.testing.assert_allclose(kernel_matrix(expr, y, x), want.T, rtol=1e-12, atol=1e-14)
    square = np.array([[k(expr, a, b) for b in x] for a in x])
    np.testing.assert_allclose(kernel_matrix(expr, x), square, rtol=1e-12, atol=1e-14)
    assert isinstance(expr, Node)
