"""scripts/mutation_score.py without running mutmut: the scratch copy's settings, and the report's
score and verdicts (an equivalence reason goes stale when the mutated line changes)."""

from __future__ import annotations

import json

import pytest
import tomllib

from tests.conftest import REPO
from tests.script_loader import load_script as load_script_file


def load_script():
    return load_script_file("mutation_score")


def test_every_registered_module_names_existing_files_and_tests():
    script = load_script()
    for name, spec in script.registry().items():
        for pattern in spec["paths"]:
            assert list(REPO.glob(pattern)), f"{name}: {pattern} matches no file"
        for test in spec["tests"]:
            assert (REPO / test).exists(), f"{name}: {test} does not exist"


def test_scratch_copy_targets_one_module(tmp_path, monkeypatch):
    script = load_script()
    monkeypatch.setattr(script, "SCRATCH", tmp_path / "scratch")
    spec = {
        "paths": ["src/probforecast/models/voldy/revin.py"],
        "tests": ["tests/nn/test_revin.py"],
    }
    scratch = script.make_scratch("nn.revin", spec)
    config = tomllib.loads((scratch / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["only_mutate"] == spec["paths"]
    assert config["pytest_add_cli_args_test_selection"] == spec["tests"]
    assert "not slow" in config["pytest_add_cli_args"]
    assert (scratch / "src" / "probforecast" / "models" / "voldy" / "revin.py").is_file()
    assert not (scratch / "notebooks").exists() and not (scratch / "docs").exists()


def test_report_scores_and_marks_stale_equivalences(tmp_path, monkeypatch):
    script = load_script()
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    equivalent = tmp_path / "equivalent"
    equivalent.mkdir()
    (equivalent / "nn.revin.toml").write_text(
        '"m.a" = { mutation = "x = 2", reason = "never read" }\n'
        '"m.b" = { mutation = "y = old", reason = "stale" }\n'
    )
    monkeypatch.setattr(script, "EQUIVALENT", equivalent)
    survivors = [
        {"name": "m.a", "status": "survived", "original": "x = 1", "mutation": "x = 2"},
        {"name": "m.b", "status": "survived", "original": "y = a | b", "mutation": "y = new"},
        {"name": "m.c", "status": "no tests", "original": "z = 1", "mutation": "z = 2"},
        {
            "name": "m.d",
            "status": "survived",
            "original": 'raise ValueError(f"bad {x}")',
            "mutation": 'raise ValueError(f"XXbad {x}XX")',
        },
    ]
    run = {
        "date": "2026-12-02 10:00 UTC",
        "commit": "abc",
        "seconds": 5,
        "load_at_start": 1.0,
        "total": 11,
        "killed": 6,
        "timeout": 1,
        "segfault": 0,
        "survived": 3,
        "no_tests": 1,
        "skipped": 0,
        "survivors": survivors,
    }
    (tmp_path / "nn.revin.json").write_text(json.dumps({"runs": [run]}))
    text = script.report()
    row = next(line for line in text.splitlines() if line.startswith("| nn.revin |"))
    # 7 killed of 11 - 1 equivalent - 1 message-only
    assert "| 11 | 77.8% (2026-12-02, abc) | 77.8% (2026-12-02, abc) | 7 | 3 | 1 | 2 |" in row
    assert "| harmless: message text only" in text
    assert "| equivalent: never read |" in text
    assert "`y = a \\| b` | `y = new` | **open** |" in text
    assert "| **no test reaches it** |" in text
    assert "| distributions | not run |" in text


def test_message_only_means_string_text_with_the_same_placeholders():
    script = load_script()
    only = script.message_text_only
    assert only('raise ValueError("eps must be > 0")', 'raise ValueError("XXeps must be > 0XX")')
    assert only('f"got {x.shape[0]} windows"', 'f"GOT {x.shape[0]} WINDOWS"')
    assert not only('f"got {x.shape[0]} windows"', 'f"got {x.shape[1]} windows"')
    assert not only('raise ValueError("eps")', "raise ValueError(None)")
    assert not only('self._check(x, "statistics")', "self._check(x, None)")
    assert not only("x = a + b", "x = a - b")
    # a string outside a raise / warning / log call may be an option value: not message-only
    option = {
        "name": "m",
        "status": "survived",
        "original": 'mode = "sum"',
        "mutation": 'mode = "XXsumXX"',
    }
    assert only(option["original"], option["mutation"])
    assert script.classify(option, {})[0] == "open"
    message = {
        "name": "m",
        "status": "survived",
        "original": 'f"window {b} has no observation"',
        "mutation": 'f"XXwindow {b} has no observationXX"',
        "context": ["if bad:", "raise ValueError("],
    }
    assert script.classify(message, {})[0] == "message"


def test_a_message_call_must_still_be_open_above_the_mutated_line():
    script = load_script()
    closed = {
        "name": "m",
        "status": "survived",
        "original": 'last = state.get(key, (-float("inf"), 0))',
        "mutation": 'last = state.get(key, (-float("INF"), 0))',
        "context": ['log.warning("x %s", key)', "now = clock()"],
    }
    assert script.classify(closed, {})[0] == "open"
    continued = closed | {
        "original": 'f"second line {x}"',
        "mutation": 'f"XXsecond line {x}XX"',
        "context": ["raise ValueError(", '    f"first line "'],
    }
    assert script.classify(continued, {})[0] == "message"


def test_survivors_only_run_carries_killed_counts_and_refuses_changed_sources(
    tmp_path, monkeypatch
):
    """A survivors-only rerun adds the base run's kills to those of the rerun survivors; it is
    refused when the base run was dirty or a mutated source changed since its commit."""
    script = load_script()
    base = {
        "total": 10,
        "skipped": 1,
        "suspicious": 0,
        "check_was_interrupted_by_user": 0,
        "killed": 5,
        "timeout": 1,
        "segfault": 0,
    }
    rerun = {"a": "killed", "b": "survived", "c": "timeout", "d": "no tests"}
    stats = script.carried_stats(base, rerun)
    assert stats["killed"] == 6 and stats["timeout"] == 2 and stats["segfault"] == 0
    assert stats["survived"] == 1 and stats["no_tests"] == 1
    assert stats["total"] == 10 and stats["skipped"] == 1
    with pytest.raises(SystemExit, match="did not check 1 survivors"):
        script.carried_stats(base, {"a": "not checked"})
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    spec = {"paths": ["src/probforecast/nn/patching.py"], "tests": []}
    record = {"runs": [{**base, "commit": "HEAD~0 + uncommitted", "survivors": []}]}
    (tmp_path / "m.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="had uncommitted changes"):
        script.carry_over_base("m", spec)
    head = script.git("rev-parse", "--short", "HEAD")
    record["runs"][0]["commit"] = head
    (tmp_path / "m.json").write_text(json.dumps(record))
    assert script.carry_over_base("m", spec)["killed"] == 5
    real_git = script.git
    monkeypatch.setattr(
        script, "git", lambda *a: "src/probforecast/nn/patching.py" if a[0] == "diff" else ""
    )
    with pytest.raises(SystemExit, match="mutated sources changed since"):
        script.carry_over_base("m", spec)
    assert real_git("diff", "--name-only", head, "--", *spec["paths"]) == ""
