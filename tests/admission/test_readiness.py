"""/readyz: policies loaded, cluster synced, serving certificate not expired (in-process)."""

from __future__ import annotations

import asyncio
import datetime
import io
from collections.abc import Mapping, Sequence, Set
from typing import Any

import httpx

from webhook.admission.app import create_app
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.state import ServerState
from webhook.cluster.reservations import Reservations
from webhook.policy.load.loader import load_policies
from webhook.policy.model.ports import ObjectCounter

from .harness import DEFAULT_POLICIES, load_object, load_review, make_review


class _UnsyncedCluster:
    """A watch cache that has not listed yet (KubeCluster before its first sync)."""

    synced = False

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return None

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        return frozenset()

    def state(self) -> dict[str, dict[str, Any]]:
        return {"Service": {"synced": False, "objects": 0, "relists": 1}}

    def register_counters(self, counters: Any) -> None:
        pass

    def watch_kinds(self, kinds: Any) -> None:
        pass

    def keep_fields(self, reads: Any) -> None:
        pass

    def register_key_indexes(self, indexes: Any) -> None:
        pass

    def key_holders(self, index: Any, key: str) -> Mapping[str, Set[tuple[str, str, str]]]:
        return {}

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        return []

    def attach_reservations(self, sink: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _Certificate:
    def __init__(self, not_after: datetime.datetime) -> None:
        self.not_after = not_after


def _get(state: ServerState, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(call())


def _state(**overrides: Any) -> ServerState:
    metrics = Metrics()
    cluster = overrides.pop("cluster", _UnsyncedCluster())
    metrics.watch_cluster(cluster.state)
    return ServerState(cluster=cluster, metrics=metrics, decision_log=DecisionLog(io.BytesIO()),
                       reservations=Reservations(), **overrides)


def test_not_ready_until_policies_load_and_the_cluster_syncs() -> None:
    state = _state()
    response = _get(state, "/readyz")
    assert response.status_code == 503
    assert response.json()["reasons"] == ["no policy set loaded", "cluster cache not synced yet"]
    state.install(LoadedPolicies.build(load_policies(DEFAULT_POLICIES), dry_run=False))
    state.cluster.synced = True  # type: ignore[attr-defined]
    assert _get(state, "/readyz").status_code == 200


def test_expired_serving_certificate_is_not_ready() -> None:
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    state = _state(certificate=_Certificate(past))
    state.install(LoadedPolicies.build(load_policies(DEFAULT_POLICIES), dry_run=False))
    state.cluster.synced = True  # type: ignore[attr-defined]
    response = _get(state, "/readyz")
    assert response.status_code == 503
    assert "serving certificate has expired" in response.json()["reasons"]


def test_cluster_cache_state_is_exported_as_gauges() -> None:
    text = _get(_state(), "/metrics").text
    assert 'edgewarden_cluster_cache_synced{kind="Service"} 0.0' in text
    assert 'edgewarden_cluster_cache_relists_total{kind="Service"} 1.0' in text


def _post(state: ServerState, path: str, review: dict[str, Any]) -> dict[str, Any]:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, json=review)

    response = asyncio.run(call())
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["response"]
    return answer


def test_before_the_first_sync_policies_that_read_the_cluster_follow_their_failure_policy(
) -> None:
    # A cache that has not listed yet knows no namespace labels and counts nothing: it must
    # not admit a production NodePort (Fail: denied, with the reason) ...
    state = _state()
    state.install(LoadedPolicies.build(load_policies(DEFAULT_POLICIES), dry_run=False))
    answer = _post(state, "/validate", load_review("nodeport-create-payments.json"))
    assert answer["allowed"] is False
    assert "cluster cache is not current (not synced yet" in answer["status"]["message"]
    assert "deny-nodeport-in-production" in answer["status"]["message"]
    # ... while a policy that reads nothing of the cluster still judges normally.
    external = make_review("CREATE", "dev", load_object("services/external-ips.yaml"))
    answer = _post(state, "/validate", external)
    assert "deny-external-ips" in answer["status"]["message"]
    assert "Service" in answer["status"]["message"]
    # Synced, the same NodePort is judged on its merits (this cluster has no namespaces, so
    # payments carries no environment label and nothing denies it).
    state.cluster.synced = True  # type: ignore[attr-defined]
    answer = _post(state, "/validate", load_review("nodeport-create-payments.json"))
    assert answer["allowed"] is True
