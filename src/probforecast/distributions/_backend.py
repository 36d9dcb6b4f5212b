"""Which way :func:`~probforecast.distributions.gls_log_prob` evaluates the GLS likelihood.

Three exact evaluations exist (same value and gradients up to rounding):

- ``"capacitance"``: Woodbury + determinant lemma with the ``DR x DR`` capacitance (spec-gls
  §1.8), cost ``~ (DR)^3``;
- ``"covariance"``: Cholesky of the dense time-major ``DB x DB`` covariance, cost
  ``~ (DB)^3 + (DB)^2 R`` (cheaper when ``B < R``, e.g. ``B = 8`` series, ``R = 10``);
- ``"banded"``: only for an AR(p) correlation given as an
  :class:`~probforecast.distributions.ar_correlation.ARCorrelation`, whose ``C^{-1}`` is banded:
  block-banded Cholesky of the capacitance, cost ``~ D p^2 R^3``.

``"auto"`` (default) picks ``"banded"`` for an ``ARCorrelation`` and otherwise the cheaper of
the other two by :func:`choose_method`. :func:`gls_options` switches
the method or the analytic Cholesky backward off for a block of code (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

Method = Literal["auto", "capacitance", "covariance", "banded"]
_METHODS = ("auto", "capacitance", "covariance", "banded")


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


def choose_method(
    d: int, b: int, r: int, method: Method = "auto", *, banded_precision: bool = False
) -> str:
    """``"banded"`` if ``banded_precision`` (an AR(p) ``C``), else ``"covariance"`` if ``DB < DR``
    (i.e. ``B < R``), else ``"capacitance"``; or ``method``, which must not be ``"banded"``
    without a banded precision.

    Forward + backward cost per matrix is dominated by the Cholesky factorisation and the
    ``cholesky_inverse`` of the factorised matrix, ``~ n^3`` for ``n = DB`` or ``DR``; the
    assembly costs (``O((DB)^2 R)`` for ``Sigma``, ``O(D B R^2 + (DR)^2)`` for the capacitance)
    are lower order. Ties (``B == R``) keep the capacitance path, whose matrix is cheaper to build.
    """
    if method == "banded" and not banded_precision:
        raise ValueError(
            'GLS method "banded" needs the correlation as an ARCorrelation (a banded C^{-1}); '
            "got a dense corr tensor"
        )
    if method != "auto":
        return method
    if banded_precision:
        return "banded"
    return "covariance" if d * b < d * r else "capacitance"
