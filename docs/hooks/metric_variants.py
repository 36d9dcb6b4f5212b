"""MkDocs hook: the Metrics page's "which paper reports which variant" table, generated from
``probforecast.metrics.paper_variants.PAPER_VARIANTS`` (so it cannot drift from the code)."""

from __future__ import annotations

PLACEHOLDER = "<!-- paper-variants-table -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    from probforecast.metrics.paper_variants import variants_table

    return markdown.replace(PLACEHOLDER, variants_table())
