"""Which way :func:`~probforecast.distributions.gls_log_prob` evaluates the GLS likelihood.

Two exact evaluations exist (same value and gradients up to rounding):

- ``"capacitance"``: Woodbury + determinant lemma with the ``DR x DR`` capacitance (spec-gls
  §1.8), cost ``~ (DR)^3``;
- ``"covariance"``: Cholesky of the dense time-major ``DB x DB`` covariance, cost
  ``~ (DB)^3 + (DB)^2 R`` (cheaper when ``B < R``, e.g. ``B = 8`` series, ``R = 10``).

``"auto"`` (default) picks the cheaper one by :func:`choose_method`. :func:`gls_options` switches
the method or the analytic Cholesky backward off for a block of code (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

Method = Literal["auto", "capacitance", "covariance"]
_METHODS = ("auto", "capacitance", "covariance")


@dataclass(frozen=True)
class GLSOptions:
    """``method``: see the module docstring. ``analytic_backward``: use
    :class:`~probforecast.distributions._capacitance.SPDLogdetQuad` (``True``) or autograd
    through the Cholesky factorisation (``False``, the pre-issue-13 behaviour)."""

    method: Method = "auto"
    analytic_backward: bool = True


_current = GLSOptions()


def get_gls_options() -> GLSOptions:
    return _current


@contextmanager
def gls_options(**changes) -> Iterator[GLSOptions]:
    """Temporarily change :class:`GLSOptions` fields, e.g.
    ``with gls_options(method="capacitance", analytic_backward=False): ...``."""
    global _current
    new = replace(_current, **changes)
    if new.method not in _METHODS:
        raise ValueError(f"GLS method must be one of {_METHODS}; got {new.method!r}")
    old, _current = _current, new
    try:
        yield new
    finally:
        _current = old


def choose_method(d: int, b: int, r: int, method: Method = "auto") -> str:
    """``"covariance"`` if its flop count is smaller than the capacitance's, else ``"capacitance"``.

    Per matrix, forward + backward: factorisation and ``cholesky_inverse`` ``~ n^3`` for the
    factorised size ``n`` (``DB`` or ``DR``), plus building the matrix and its gradient:
    ``~ 4 (DB)^2 R`` (``F F^T`` and its backward) vs ``~ 6 D B R^2`` (``L_k^T P L_k``).
    So ``B < R`` selects the covariance path (up to the lower-order terms).
    """
    if method != "auto":
        return method
    n_db, n_dr = d * b, d * r
    cost_db = n_db**3 + 4 * n_db**2 * r
    cost_dr = n_dr**3 + 6 * d * b * r * r
    return "covariance" if cost_db < cost_dr else "capacitance"
