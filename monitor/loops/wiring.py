"""Build the operator for the settings: a real API server, or offline when there is none."""

from __future__ import annotations

import logging

from monitor.core.settings import MonitorSettings
from monitor.kube.client import api_client
from monitor.kube.offline import offline_target
from monitor.kube.target import KubeTarget
from monitor.metrics import process as metrics
from monitor.operator.ports import Target
from monitor.operator.reconciler import Operator
from monitor.store.protocol import Store

LOG = logging.getLogger("modelguard.operator")


def build_target(settings: MonitorSettings, store: Store) -> Target:
    """`KubeTarget` when a cluster is configured; else the offline synthesis (dryRun only)."""
    client = api_client(settings.kubernetes.access, settings.kubernetes.kubeconfig)
    if client is None:
        LOG.info("no Kubernetes API: offline operator (dryRun patches are logged and audited)")
        return offline_target(
            store,
            settings.kubernetes.namespace,
            settings.analysis.chunk_size,
            settings.operator.policy_file,
        )
    return KubeTarget(client, namespace=settings.kubernetes.namespace)


def build_operator(settings: MonitorSettings, store: Store) -> Operator:
    return Operator(store, build_target(settings, store), metrics=metrics.METRICS)
