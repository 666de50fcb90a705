"""The monitor's routes by group; each module's `add_routes(app, ctx)` registers its own.

The routes that act on the monitor's memory (registration, candidates, operator actions)
translate HTTP only: parse the request, call the service (monitor/service/) as the CLI does,
answer its result, map its refusals to status codes (`service_errors.py`, one table). Ingest,
the read-outs and the report still go to the store (or the worker) directly: nothing else
asks for them.

`ingest.py` (records and labels), `registration.py` (`POST /v1/models`), `candidates.py`
(versions judged before they serve), `reads.py` (versions,
chunks, track record, audit, decisions), `operator.py` (clear-rejection, known-good),
`reports.py` (the HTML report), `probes.py` (`/metrics`, `/livez`, `/readyz`).
"""
