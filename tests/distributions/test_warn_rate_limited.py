"""``warn_rate_limited`` (one warning per key per minute, counting what it held back) and
``jitter_counts``, with a fake monotonic clock (issue 19)."""

from __future__ import annotations

import logging

import pytest

from probforecast.distributions import _cholesky
from probforecast.distributions._cholesky import (
    jitter_counts,
    reset_warning_state,
    warn_rate_limited,
)

LOGGER = "probforecast.distributions._cholesky"


@pytest.fixture
def clock(monkeypatch):
    """A settable ``time.monotonic`` for the rate limiter; fresh limiter state."""
    now = [1000.0]
    monkeypatch.setattr(_cholesky.time, "monotonic", lambda: now[0])
    reset_warning_state()
    yield now
    reset_warning_state()


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_suppression_count_and_interval(clock, caplog):
    """The first warning is logged as is; repeats within 60 s are held back and counted; the
    first one at exactly 60 s later is logged with the count, which then starts again at 0."""
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        warn_rate_limited("k", "first")
        clock[0] += 10.0
        warn_rate_limited("k", "held 1")
        clock[0] += 49.0
        warn_rate_limited("k", "held 2")  # 59 s after the first: still held back
        clock[0] += 1.0
        warn_rate_limited("k", "second")  # exactly 60 s after the first
        clock[0] += 60.0
        warn_rate_limited("k", "third")
    assert _messages(caplog) == [
        "first",
        "second (2 similar warnings suppressed in the last minute)",
        "third",
    ]


def test_keys_are_limited_separately(clock, caplog):
    """Two keys at the same moment each log their warning."""
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        warn_rate_limited("a", "from a")
        warn_rate_limited("b", "from b")
    assert _messages(caplog) == ["from a", "from b"]


def test_jitter_counts_is_a_copy(monkeypatch):
    """``jitter_counts()`` returns the per-name counts as a new dict (mutating it does not
    change the module's counts)."""
    monkeypatch.setattr(_cholesky, "_jitter_counts", {"C": 2})
    counts = jitter_counts()
    assert counts == {"C": 2}
    counts["C"] = 5
    assert jitter_counts() == {"C": 2}
