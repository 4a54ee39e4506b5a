"""/readyz and /metrics say when the watch cache has had no news for too long (in-process,
with the real watch cache on the Kubernetes API double)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.kubeapi import KubeApi
from tests.support import api_client, eventually
from webhook.admission.app import create_app
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.state import ServerState
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_informer import InformerSettings
from webhook.cluster.reservations import Reservations
from webhook.policy.load.loader import load_policies

from .harness import DEFAULT_POLICIES

# Stall detection out of the way (600 s): what is under test is the age bound.
SETTINGS = InformerSettings(watch_timeout_seconds=300, connect_timeout=2.0, list_timeout=5.0,
                            backoff_initial=0.02, backoff_max=0.2, stall_seconds=600,
                            stale_after_seconds=0.5)


@pytest.fixture
def state(kube_api: KubeApi, kubeconfig: Path) -> Iterator[ServerState]:
    cluster = KubeCluster(api_client(kubeconfig), settings=SETTINGS)
    metrics = Metrics()
    metrics.watch_cluster(cluster.state)
    server_state = ServerState(cluster=cluster, metrics=metrics,
                               decision_log=DecisionLog(io.BytesIO()),
                               reservations=Reservations())
    server_state.install(LoadedPolicies.build(load_policies(DEFAULT_POLICIES), dry_run=False))
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    yield server_state
    cluster.stop()


def _get(state: ServerState, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(call())


def test_a_cache_with_no_news_past_the_bound_is_not_ready(
    kube_api: KubeApi, state: ServerState
) -> None:
    """Before: /readyz said ready while a stalled watch kept the cache minutes behind."""
    def service_reason() -> str | None:
        answer = _get(state, "/readyz")
        reasons = answer.json().get("reasons", [])
        assert answer.status_code == 503 or not reasons
        return next((r for r in reasons if r.startswith("cluster cache of Service")), None)

    with kube_api.stalled_watches():
        reason = eventually(service_reason, what="/readyz to report the stale Service cache")
        assert "is stale: last event, bookmark or list" in reason
        metrics = _get(state, "/metrics").text
        assert 'edgewarden_cluster_cache_stale{kind="Service"} 1.0' in metrics
        assert 'edgewarden_cluster_cache_last_event_age{kind="Service"}' in metrics

    for resource in ("namespaces", "services", "ingresses"):
        kube_api.bookmark(resource)  # news again: every kind current

    eventually(lambda: _get(state, "/readyz").status_code == 200, what="ready again")
    metrics = _get(state, "/metrics").text
    assert 'edgewarden_cluster_cache_stale{kind="Service"} 0.0' in metrics
