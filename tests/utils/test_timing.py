"""``time_interleaved``: one warm-up each, then alternating calls, best time per runner (on a
fake clock: no real timing in tests)."""

from __future__ import annotations

import probforecast.utils.timing as timing


def test_runners_alternate_after_one_warm_up_and_the_best_time_is_kept(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls: list[str] = []
    durations = {"a": iter([9.0, 3.0, 1.0, 2.0]), "b": iter([9.0, 5.0, 4.0, 6.0])}

    def runner(name):
        def run():
            calls.append(name)
            clock[0] += next(durations[name])

        return run

    best = timing.time_interleaved({"a": runner("a"), "b": runner("b")}, repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert best == {"a": 1.0, "b": 4.0}  # the warm-up's 9.0 is not timed
