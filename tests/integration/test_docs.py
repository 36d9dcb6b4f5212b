"""The README stays a landing page whose links resolve; the docs site's sources are complete
(``mkdocs build --strict`` itself runs in .ci/run)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    targets = [a or b for a, b in LINK.findall(text)]
    assert targets
    for target in targets:
        if target.startswith(("http", "#")):
            continue
        assert (REPO / target.split("#")[0]).exists(), f"README links to missing {target}"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from pages(value)
        elif isinstance(node, list):
            for item in node:
                yield from pages(item)

    in_nav = set(pages(config["nav"]))
    on_disk = {
        str(p.relative_to(REPO / "docs"))
        for p in (REPO / "docs").rglob("*.md")
        if "hooks" not in p.parts
    }
    assert on_disk == in_nav, (sorted(on_disk - in_nav), sorted(in_nav - on_disk))
