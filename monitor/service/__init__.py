"""The monitor's application layer: what an operator or a predictor may ask of it.

Why a layer: the REST routes (monitor/api/routes/) and the CLI (monitor/cli.py) ask the same
things (register a version, declare or withdraw a candidate, list candidates with their
verdicts, declare a known-good version, clear a rejection) and must get the same answer and
the same audit record. Each action is decided here, once, over the store's primitives; the
routes only parse HTTP and map `errors.ServiceError`s to status codes, the CLI prints.

- `registration.py`: vet an artifact in a child process and store the registration;
- `candidates.py`: declare, withdraw and list candidates (`views.py`: the listing's shape);
- `known_good.py`, `rejections.py`: the operator's two manual overrides;
- `errors.py`: the refusals, by meaning; `ports.py`: the store as the layer uses it.
"""
