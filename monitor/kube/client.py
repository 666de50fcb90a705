"""An API client from the monitor's settings: in-cluster, a kubeconfig, or none.

One place, so the server, `reconcile --once` and the tests configure the client alike.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from kubernetes import client, config

LOG = logging.getLogger("modelguard.kube")
Mode = Literal["auto", "incluster", "kubeconfig", "off"]


def api_client(mode: Mode, kubeconfig: Path | str | None = None) -> client.ApiClient | None:
    """The configured client; None when `mode` is off, or auto finds no configuration.

    `incluster` and `kubeconfig` fail loudly when their configuration is missing; `auto`
    tries in-cluster first, then the kubeconfig, and falls back to None (offline operator).
    """
    if mode == "off":
        return None
    ways = ["incluster", "kubeconfig"] if mode == "auto" else [mode]
    for way in ways:
        try:
            if way == "incluster":
                config.load_incluster_config()
                return client.ApiClient()
            cfg = client.Configuration()
            path = str(kubeconfig) if kubeconfig else None
            config.load_kube_config(config_file=path, client_configuration=cfg)
            return client.ApiClient(cfg)
        except (config.ConfigException, OSError) as exc:
            if mode != "auto":
                raise
            LOG.info("kubernetes %s configuration not found (%s)", way, exc)
    LOG.warning("kubernetes=auto found no cluster configuration: the operator runs offline")
    return None
