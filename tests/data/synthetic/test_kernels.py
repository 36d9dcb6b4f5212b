"""The KernelSynth bank and expressions against naive scalar formulas (scikit-learn's)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from probforecast.data.synthetic.kernels import (
    KERNEL_BANK,
    Node,
    expand,
    from_json,
    kernel_matrix,
    key,
    leaves,
    random_kernel,
    to_json,
)


def naive_leaf(label: str, a: float, b: float) -> float:
    """sklearn's formulas written out per scalar pair (independent of the vectorised code)."""
    name, arg = label.split("(")
    arg = arg.rstrip(")")
    d = abs(a - b)
    if name == "ExpSineSquared":
        num, den = arg.split("/")
        return math.exp(-2.0 * math.sin(math.pi * d / (float(num) / float(den))) ** 2)
    if name == "DotProduct":
        return float(arg) ** 2 + a * b
    if name == "RBF":
        return math.exp(-(d**2) / (2 * float(arg) ** 2))
    if name == "RationalQuadratic":
        alpha = float(arg)
        return (1 + d**2 / (2 * alpha)) ** (-alpha)
    if name == "WhiteKernel":
        return float(arg) if a == b else 0.0
    assert name == "ConstantKernel"
    return float(arg)


def test_bank_has_the_33_chronos_kernels():
    assert len(KERNEL_BANK) == 33
    labels = [leaf.label for leaf in KERNEL_BANK]
    assert labels.count("ExpSineSquared(4/1024)") == 3
    kinds = Counter(leaf.kind for leaf in KERNEL_BANK)
    assert kinds == {
        "ExpSineSquared": 21,
        "DotProduct": 3,
        "RBF": 3,
        "RationalQuadratic": 3,
        "White": 2,
        "Constant": 1,
    }


@pytest.mark.parametrize("leaf", KERNEL_BANK, ids=lambda leaf: leaf.label)
def test_leaf_matrix_matches_naive_formula(leaf):
    x = np.linspace(-0.01, 1.01, 9)
    want = np.array([[naive_leaf(leaf.label, a, b) for b in x] for a in x])
    np.testing.assert_allclose(leaf.matrix(x, x), want, rtol=1e-12, atol=1e-14)


def test_composition_rules_and_frequencies():
    rng = np.random.default_rng(0)
    exprs = [random_kernel(rng, 5) for _ in range(20000)]
    counts = Counter(len(leaves(e)) for e in exprs)
    assert set(counts) == {1, 2, 3, 4, 5}
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3
    labels = Counter(leaf.label for e in exprs for leaf in leaves(e))
    total = sum(labels.values())
    # ExpSineSquared(4/1024) is 3 of the 33 bank entries
    assert abs(labels["ExpSineSquared(4/1024)"] / total - 3 / 33) < 0.005
    multiplicity = Counter(leaf.label for leaf in KERNEL_BANK)
    observed = [labels[name] for name in multiplicity]
    expected = [total * multiplicity[name] / 33 for name in multiplicity]
    assert stats.chisquare(observed, expected).pvalue > 1e-3

    def ops(e):
        return [] if not isinstance(e, Node) else ops(e.left) + ops(e.right) + [e.op]

    all_ops = Counter(op for e in exprs for op in ops(e))
    assert set(all_ops) == {"+", "*"}
    assert abs(all_ops["+"] / sum(all_ops.values()) - 0.5) < 0.02
    with pytest.raises(ValueError, match="max_kernels"):
        random_kernel(rng, 0)


def test_fold_is_left_to_right():
    rng = np.random.default_rng(3)
    for _ in range(50):
        e = random_kernel(rng, 5)
        while isinstance(e, Node):  # the right child is always a leaf
            assert not isinstance(e.right, Node)
            e = e.left


def test_json_round_trip_and_expansion_identity():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 17)
    for _ in range(200):
        e = random_kernel(rng, 5)
        assert key(from_json(to_json(e))) == key(e)
        terms = expand(e)
        summed = sum(np.prod([leaf.matrix(x, x) for leaf in t], axis=0) for t in terms)
        np.testing.assert_allclose(summed, kernel_matrix(e, x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="unknown kernel"):
        from_json("Matern(1.5)")
    with pytest.raises(ValueError, match="op"):
        from_json(["-", "RBF(0.1)", "RBF(1.0)"])
