"""The report's table of served values outside the expected range, per feature and chunk.

Apart from report.py so the figures can change without touching it. The shares are the
chunks' `out_of_range_ratio` (`ModelSchema.out_of_range`: present values outside the
expected range or the limits, or a category the schema does not list), the same numbers
`modelguard_data_out_of_range_ratio` exports and ModelguardFeatureOutsideExpectedRange
alerts on.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from monitor.core.evidence import ChunkEvidence

SHOWN_CHUNKS = 12  # the newest ones; the Data quality figure has them all


def outside_expected_table(chunks: Sequence[ChunkEvidence]) -> str:
    """A row per feature with a value outside its expected range in any of the newest
    chunks, a column per chunk; a sentence when there is none."""
    shown = list(chunks)[-SHOWN_CHUNKS:]
    features = sorted({f for c in shown for f, share in c.out_of_range_ratio.items() if share})
    title = "<h3>Values outside the expected range</h3>"
    if not features:
        return (
            f"{title}<p class=note>No served value outside the schema's expected ranges in "
            f"the newest {len(shown)} chunks.</p>"
        )
    head = "".join(f"<th>#{c.chunk_index} {html.escape(c.start_time[:10])}</th>" for c in shown)
    rows = []
    for name in features:
        cells = "".join(f"<td>{_share(c.out_of_range_ratio.get(name))}</td>" for c in shown)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return (
        f"{title}<p class=note>Share of each feature's present values the predictor served "
        "although they lie outside the schema's expected range (or are unknown categories); "
        "values beyond declared limits were refused and are not here.</p>"
        f"<table class=outside><tr><th>feature</th>{head}</tr>{''.join(rows)}</table>"
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
