"""Reading a rendered report back: its figures by title (monitor/analysis/charts.py writes
each as a heading, a div and its plotly JSON)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

_FIGURE = re.compile(
    r"<h4 class=figure>(.*?)</h4><div class=mg-figure[^>]*></div>"
    r"<script type='application/json' class=mg-figure-spec>(.*?)</script>",
    re.S,
)


def figures(page: str) -> list[tuple[str, dict[str, Any]]]:
    """(title, plotly figure spec {"data": [...], "layout": {...}}) of every figure, in page
    order."""
    return [(html.unescape(t), json.loads(spec)) for t, spec in _FIGURE.findall(page)]


def traces(page: str, title: str) -> dict[str, list[Any]]:
    """name -> y values of the figure whose title contains `title`."""
    for name, spec in figures(page):
        if title in name:
            return {t.get("name", ""): t["y"] for t in spec["data"]}
    raise AssertionError(f"no figure {title!r} in {[t for t, _ in figures(page)]}")
