"""The monitor's running parts: the background loops, the leadership, the analysis worker,
and the wiring of the operator to its Kubernetes (or offline) target.

`monitor/server.py` puts them together with the store and the HTTP app; these modules build
and run one part each.
"""
