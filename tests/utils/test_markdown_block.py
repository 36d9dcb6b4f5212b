"""``replace_marked_block``: the generated block between two markers is replaced, the prose
around it is kept, and a file without the markers is refused with the markers named."""

from __future__ import annotations

import pytest

from probforecast.utils.markdown_block import block_markers, replace_marked_block


def test_the_block_between_the_markers_is_replaced_and_the_rest_kept(tmp_path):
    start, end = block_markers("table")
    assert (start, end) == ("<!-- table:start -->", "<!-- table:end -->")
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{start}\nold\nrows\n{end}\noutro {start.upper()}\n")
    replace_marked_block(doc, "table", "| a |\n| b |\n")
    assert doc.read_text() == f"intro\n{start}\n| a |\n| b |\n{end}\noutro {start.upper()}\n"
    replace_marked_block(doc, "table", "| c |")  # with or without a final newline: the same
    assert doc.read_text() == f"intro\n{start}\n| c |\n{end}\noutro {start.upper()}\n"


def test_a_file_without_both_markers_is_refused(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table:start -->\nno end\n")
    with pytest.raises(
        ValueError, match=r"has no <!-- table:start --> ... <!-- table:end --> block"
    ):
        replace_marked_block(doc, "table", "x")
    assert doc.read_text() == "<!-- table:start -->\nno end\n"
