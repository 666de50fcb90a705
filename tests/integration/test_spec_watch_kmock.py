"""The ModelMonitor watch over real HTTP (kmock's emulator, the official client's Watch)."""

from __future__ import annotations

import threading

from kubernetes import client

from monitor.kube.target import API_VERSION, GROUP, PLURAL
from monitor.kube.watch import watch_spec_changes
from tests.support.kube import create_modelmonitor, kube_emulator

NS = "rain"


def test_the_watch_signals_a_new_monitor_and_a_spec_edit_but_not_a_status_write() -> None:
    with kube_emulator() as kube:
        create_modelmonitor(kube, NS, "rain", {"model": "rain_forecast", "mode": "dryRun"})
        custom = client.CustomObjectsApi(kube.api_client())
        signals: list[int] = []
        signalled = threading.Semaphore(0)

        def on_change() -> None:
            signals.append(1)
            signalled.release()

        stop = threading.Event()
        thread = threading.Thread(
            target=watch_spec_changes,
            args=(custom, GROUP, API_VERSION, PLURAL, NS, on_change, stop, 5.0),
            daemon=True,
        )
        thread.start()
        try:
            assert signalled.acquire(timeout=30), "the existing monitor was not signalled"
            # The monitor's own status write: generation unchanged, observed catches up.
            custom.patch_namespaced_custom_object_status(
                GROUP, API_VERSION, NS, PLURAL, "rain", {"status": {"observedGeneration": 1}}
            )
            assert not signalled.acquire(timeout=3), "a status write woke the loop"
            # kubectl edit of the spec (kmock does not bump generation itself: a gap, so the
            # edit carries the generation a real API server would assign).
            custom.patch_namespaced_custom_object(
                GROUP,
                API_VERSION,
                NS,
                PLURAL,
                "rain",
                {"metadata": {"generation": 2}, "spec": {"mode": "auto"}},
            )
            assert signalled.acquire(timeout=30), "the spec edit was not signalled"
            assert len(signals) == 2
        finally:
            stop.set()
            thread.join(timeout=30)
