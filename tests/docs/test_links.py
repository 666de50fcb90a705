"""Every relative link and #anchor in the docs resolves, and nothing points outside the repo.

Why: the docs name modules, runbooks and sections that move when code moves (issue: docs that
match the code); a broken link is the first sign a page describes code that is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.paths import REPO

FENCE = re.compile(r"```.*?```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    found = [*sorted(REPO.glob("docs/**/*.md")), REPO / "README.md", REPO / "k8s" / "README.md"]
    return [p for p in found if p.exists()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#+ (.*)$", FENCE.sub("", page.read_text()), re.M):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for match in LINK.finditer(FENCE.sub("", page.read_text())):
        link = match.group(1)
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page.resolve()
        if not target.is_relative_to(REPO):
            broken.append(f"{link}: outside the repository")
        elif not target.exists():
            broken.append(f"{link}: no such file")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{link}: no heading #{fragment}")
    assert not broken, broken


def test_slug_follows_github() -> None:
    assert slug("Deciding: a bad release vs a drifting world") == (
        "deciding-a-bad-release-vs-a-drifting-world"
    )
    assert slug("What runs where: two images, two dependency sets") == (
        "what-runs-where-two-images-two-dependency-sets"
    )
