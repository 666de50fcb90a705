"""The monitor's routes by group; each module's `add_routes(app, ctx)` registers its own.

`ingest.py` (records and labels), `registration.py` (`POST /v1/models`), `candidates.py`
(versions judged before they serve), `reads.py` (versions,
chunks, track record, audit, decisions), `operator.py` (clear-rejection, known-good),
`reports.py` (the HTML report), `probes.py` (`/metrics`, `/livez`, `/readyz`).
"""
