"""Generated blocks inside hand-written Markdown: the benchmark and experiment scripts write
their tables into ``docs/`` between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, leaving
the prose around them untouched."""

from __future__ import annotations

from pathlib import Path

__all__ = ["block_markers", "replace_marked_block"]


def block_markers(name: str) -> tuple[str, str]:
    """The start and end comments of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_marked_block(path: str | Path, name: str, block: str) -> None:
    """Replace the text between block ``name``'s markers in ``path`` by ``block`` (one newline
    after the start marker and before the end marker); raises ``ValueError`` naming the markers
    when the file lacks them."""
    path = Path(path)
    start, end = block_markers(name)
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} block to replace")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    body = block.rstrip("\n")
    path.write_text(f"{before}{start}\n{body}\n{end}{after}")
