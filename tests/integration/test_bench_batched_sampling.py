"""``scripts/bench_batched_sampling.py`` end to end at a tiny size: both evaluation modes give
the same samples for every model family, and the table lands between the markers."""

from __future__ import annotations

from tests.script_loader import load_script


def test_batched_and_per_window_loop_agree_and_the_table_is_written(tmp_path, capsys):
    bench = load_script("bench_batched_sampling")
    out = tmp_path / "bench.md"
    out.write_text(f"intro\n{bench.START}\nold\n{bench.END}\noutro\n")
    bench.main(["--windows", "5", "--num-samples", "2", "--batch-size", "3", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "x |" in line]
    assert [r.split(" | ")[0][2:] for r in rows] == [
        "GaussianRNN",
        "GPVar + GLS",
        "VolDy-VAE",
        "CW-Flow",
    ]
    for row in rows:
        assert float(row.rstrip(" |").split(" | ")[-1]) < 1e-4  # max abs difference
