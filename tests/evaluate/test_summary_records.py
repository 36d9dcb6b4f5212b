"""``probforecast.evaluate`` summaries and JSON lines against numpy and hand-made cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from probforecast.evaluate import JsonLines, format_mean_std, group_records, in_band, mean_std


def test_mean_std_is_numpy_mean_and_sample_std():
    values = [0.013, 0.0171, 0.0098, 0.0224]
    mean, std = mean_std(values)
    assert mean == pytest.approx(np.mean(values), abs=1e-15)
    assert std == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    assert mean_std([0.5]) == (0.5, 0.0)
    assert format_mean_std(values) == f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"
    assert format_mean_std([1.23456, 2.0], digits=2, sep="±") == "1.62±0.54"


@pytest.mark.parametrize(
    ("values", "message"),
    [([], "mean_std needs at least one value; got none"), ([0.1, math.nan], "got NaN among")],
)
def test_mean_std_refuses_no_value_and_nan(values, message):
    with pytest.raises(ValueError, match=message):
        mean_std(values)


def test_in_band_is_two_combined_standard_deviations():
    values = [1.0, 3.0]  # mean 2, sample std sqrt(2)
    ref_std = 0.5
    edge = 2 * math.sqrt(2 + ref_std**2)
    assert in_band(values, (2 + edge * (1 - 1e-9), ref_std))
    assert in_band(values, (2 - edge * (1 - 1e-9), ref_std))
    assert not in_band(values, (2 + edge * (1 + 1e-9), ref_std))
    assert not in_band([2.0], (2.1, 0.04))  # one seed: only the reference's std counts
    assert in_band([2.0], (2.07, 0.04))
    assert not in_band(values, (2 + edge, ref_std), width=1.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        in_band(values, (2.0, -0.1))
    assert in_band([2.0], (2.0, 0.0))  # a reference without spread is allowed
    # exactly on the edge (all numbers exact in binary): |2 - 2.5| = 2 sqrt(0 + 0.25^2) = 0.5
    assert in_band([2.0], (2.5, 0.25)) and not in_band([2.0], (2.5 + 2**-20, 0.25))


def test_group_records_keeps_first_seen_order_and_names_missing_keys():
    records = [
        {"model": "b", "lik": "gls", "seed": 1},
        {"model": "a", "lik": "gls", "seed": 1},
        {"model": "b", "lik": "gls", "seed": 2},
    ]
    groups = group_records(records, ("model", "lik"))
    assert list(groups) == [("b", "gls"), ("a", "gls")]
    assert [r["seed"] for r in groups[("b", "gls")]] == [1, 2]
    with pytest.raises(KeyError, match="lacks \\['dataset'\\]"):
        group_records(records, ("dataset",))


def test_json_lines_round_trip_resume_and_plain_numbers(tmp_path):
    lines = JsonLines(tmp_path / "sub" / "dir" / "results.jsonl")  # folders made on append
    assert lines.read() == [] and not lines.has(seed=1)
    lines.append({"seed": 1, "crps": np.float32(0.25), "steps": torch.tensor(7), "dir": Path("x")})
    lines.append({"seed": 2, "crps": 0.5})
    assert lines.read() == [
        {"seed": 1, "crps": 0.25, "steps": 7, "dir": "x"},
        {"seed": 2, "crps": 0.5},
    ]
    assert lines.has(seed=2) and lines.has(seed=1, crps=0.25)
    assert not lines.has(seed=3) and not lines.has(seed=2, steps=7)  # missing key: no match
    assert [r["seed"] for r in lines] == [1, 2]
    assert len(lines.path.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (math.nan, "holds NaN or inf"),
        (math.inf, "holds NaN or inf"),
        (np.float64("nan"), "holds NaN or inf"),  # a float subclass: json's own check
        (np.float32("nan"), "cannot write the non-finite number nan as JSON"),  # via .item()
        (torch.tensor(float("inf")), "cannot write the non-finite number inf as JSON"),
    ],
)
def test_json_lines_refuses_non_finite_numbers(tmp_path, bad, message):
    lines = JsonLines(tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match=message):
        lines.append({"crps": bad})
    assert lines.read() == []


def test_json_lines_names_the_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n\n[1, 2]\n")
    with pytest.raises(ValueError, match="r.jsonl:3 holds a list"):
        JsonLines(path).read()
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="r.jsonl:2 is not JSON"):
        JsonLines(path).read()
    with pytest.raises(TypeError, match="cannot write a object"):
        JsonLines(path).append({"a": object()})
