"""The KernelSynth kernel bank (Chronos, 33 scikit-learn kernels) as serialisable expressions.

A composite kernel is a binary tree whose leaves are bank entries and whose nodes are ``+`` or
``*``. With ``d = |x - x'|`` on the grid ``x in [0, 1]`` (``T = 1024`` points, periods divided by
1024 as in Chronos) the leaves are::

    ExpSineSquared(p, l)   exp(-2 sin^2(pi d / p) / l^2)
    DotProduct(s0)         s0^2 + x x'                     (non-stationary)
    RBF(l)                 exp(-d^2 / (2 l^2))
    RationalQuadratic(a,l) (1 + d^2 / (2 a l^2))^(-a)
    WhiteKernel(v)         v * [x == x']
    ConstantKernel(c)      c

``KernelSynth(J)`` draws ``j ~ U{1..J}`` leaves uniformly from the bank with replacement and folds
them left to right, ``k = ((k1 op k2) op k3) ...``, each ``op`` in ``{+, *}`` with probability 1/2.
Expressions print as strings (``"(RBF(0.1) + DotProduct(1.0)) * WhiteKernel(0.1)"``) and round-
trip through ``to_json`` / ``from_json``; ``key`` is the canonical string used to cache
factorizations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

BANK_VERSION = "chronos-kernelsynth-33"
LeafKind = Literal["ExpSineSquared", "DotProduct", "RBF", "RationalQuadratic", "White", "Constant"]


@dataclass(frozen=True)
class Leaf:
    """One bank kernel. ``params`` are in the [0, 1] grid units of KernelSynth."""

    kind: LeafKind
    params: tuple[float, ...]
    label: str

    @property
    def stationary(self) -> bool:
        return self.kind != "DotProduct"

    def __str__(self) -> str:
        return self.label

    def stationary_value(self, d: np.ndarray) -> np.ndarray:
        """``k(d)`` for a stationary leaf at lags ``d`` (any shape, x units)."""
        d = np.abs(np.asarray(d, dtype=np.float64))
        if self.kind == "ExpSineSquared":
            period, ls = self.params
            return np.exp(-2.0 * np.sin(np.pi * d / period) ** 2 / ls**2)
        if self.kind == "RBF":
            return np.exp(-(d**2) / (2.0 * self.params[0] ** 2))
        if self.kind == "RationalQuadratic":
            alpha, ls = self.params
            return (1.0 + d**2 / (2.0 * alpha * ls**2)) ** (-alpha)
        if self.kind == "White":
            return np.where(d == 0.0, self.params[0], 0.0)
        if self.kind == "Constant":
            return np.full_like(d, self.params[0])
        raise ValueError(f"{self.kind} is not stationary")

    def matrix(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K[u, v] = k(x_u, y_v)``: ``x [n]``, ``y [m]`` -> ``[n, m]`` (float64)."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if self.kind == "DotProduct":
            return self.params[0] ** 2 + np.outer(x, y)
        if self.kind == "White":
            return np.where(x[:, None] == y[None, :], self.params[0], 0.0)
        return self.stationary_value(x[:, None] - y[None, :])


@dataclass(frozen=True)
class Node:
    """``left op right`` with ``op`` in ``{"+", "*"}``."""

    op: Literal["+", "*"]
    left: Expr
    right: Expr

    def __str__(self) -> str:
        def wrap(e: Expr) -> str:
            return f"({e})" if isinstance(e, Node) and e.op != self.op else str(e)

        return f"{wrap(self.left)} {self.op} {wrap(self.right)}"


Expr = Leaf | Node


def _bank() -> tuple[Leaf, ...]:
    periods = [24, 48, 96, 168, 336, 672, 7, 14, 30, 60, 365, 730, 4, 26, 52, 4, 6, 12, 4, 40, 10]
    leaves = [Leaf("ExpSineSquared", (p / 1024, 1.0), f"ExpSineSquared({p}/1024)") for p in periods]
    leaves += [Leaf("DotProduct", (s,), f"DotProduct({s})") for s in (0.0, 1.0, 10.0)]
    leaves += [Leaf("RBF", (ls,), f"RBF({ls})") for ls in (0.1, 1.0, 10.0)]
    leaves += [
        Leaf("RationalQuadratic", (a, 1.0), f"RationalQuadratic({a})") for a in (0.1, 1.0, 10.0)
    ]
    leaves += [Leaf("White", (v,), f"WhiteKernel({v})") for v in (0.1, 1.0)]
    leaves.append(Leaf("Constant", (1.0,), "ConstantKernel(1.0)"))
    return tuple(leaves)


KERNEL_BANK: tuple[Leaf, ...] = _bank()
_BY_LABEL = {leaf.label: leaf for leaf in KERNEL_BANK}
assert len(KERNEL_BANK) == 33


def leaves(expr: Expr) -> list[Leaf]:
    """The leaves of ``expr`` from left to right."""
    if isinstance(expr, Leaf):
        return [expr]
    return leaves(expr.left) + leaves(expr.right)


def key(expr: Expr) -> str:
    """Canonical string (fully parenthesised), the cache key of a composite kernel."""
    if isinstance(expr, Leaf):
        return expr.label
    return f"({key(expr.left)} {expr.op} {key(expr.right)})"


def kernel_matrix(expr: Expr, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """The dense covariance ``[n, m]`` of a composite kernel (the reference for every sampler)."""
    y = x if y is None else y
    if isinstance(expr, Leaf):
        return expr.matrix(x, y)
    left, right = kernel_matrix(expr.left, x, y), kernel_matrix(expr.right, x, y)
    return left + right if expr.op == "+" else left * right


def random_kernel(rng: np.random.Generator, max_kernels: int = 5) -> Expr:
    """``KernelSynth(J)``: 1..J bank leaves with replacement, folded left with random + / *."""
    if max_kernels < 1:
        raise ValueError(f"max_kernels must be >= 1; got {max_kernels}")
    count = int(rng.integers(1, max_kernels + 1))
    picks = rng.integers(0, len(KERNEL_BANK), size=count)
    expr: Expr = KERNEL_BANK[picks[0]]
    for index in picks[1:]:
        op: Literal["+", "*"] = "+" if rng.random() < 0.5 else "*"
        expr = Node(op, expr, KERNEL_BANK[index])
    return expr


def to_json(expr: Expr) -> str | list:
    """Nested lists ``[op, left, right]`` with leaf labels; JSON-serialisable."""
    if isinstance(expr, Leaf):
        return expr.label
    return [expr.op, to_json(expr.left), to_json(expr.right)]


def from_json(data: str | list) -> Expr:
    if isinstance(data, str):
        if data not in _BY_LABEL:
            raise ValueError(f"unknown kernel {data!r}; expected a KernelSynth bank label")
        return _BY_LABEL[data]
    if len(data) != 3 or data[0] not in ("+", "*"):
        raise ValueError(f"expected [op, left, right] with op in '+', '*'; got {data!r}")
    return Node(data[0], from_json(data[1]), from_json(data[2]))


def expand(expr: Expr) -> list[list[Leaf]]:
    """Sum-of-products form: ``k = sum_terms prod_{leaf in term} leaf`` (distributes ``*``)."""
    if isinstance(expr, Leaf):
        return [[expr]]
    left, right = expand(expr.left), expand(expr.right)
    if expr.op == "+":
        return left + right
    return [a + b for a in left for b in right]
