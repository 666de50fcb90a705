"""The monitor's running parts: the background loops of the server and their wiring.

The only place that puts the layers together: the store, the analysis cycle, the operator,
its Kubernetes (or offline) target and the metrics.
"""
