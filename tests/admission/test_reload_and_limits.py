"""Policy reload without restart, the LoadBalancer cap under concurrency, internal errors."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import orjson

from tests.support import eventually
from webhook.certs.files import GeneratedCertificates

from .harness import (
    FIXTURES,
    SNI,
    RunningServer,
    base_settings,
    load_object,
    make_review,
    start_server,
)

WAIT = 15.0


def _nodeport_allowed(server: RunningServer) -> bool:
    review = make_review("CREATE", "dev", load_object("services/nodeport.yaml"))
    return bool(server.review("/validate", review)["allowed"])


def test_reload_swaps_a_good_set_and_refuses_a_broken_one(
    tmp_path: Path, certificates: GeneratedCertificates,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(FIXTURES / "policies" / "audit-and-warn.yaml", policies)
    server = start_server(base_settings(certificates, tmp_path, policies=(policies,)),
                          certificates.ca_file)
    try:
        assert _nodeport_allowed(server)
        shutil.copy(FIXTURES / "reload" / "deny-nodeport-everywhere.yaml", policies)
        eventually(lambda: not _nodeport_allowed(server), timeout=WAIT, interval=0.05,
                   what="the new policy to deny NodePort")
        assert server.metric("edgewarden_policy_reloads_total") >= 1
        assert server.metric("edgewarden_policies_loaded") == 3

        shutil.copy(FIXTURES / "broken" / "broken.yaml", policies)
        eventually(lambda: server.metric("edgewarden_policy_load_errors_total") >= 1,
                   timeout=WAIT, interval=0.05, what="the broken set to be refused")
        assert not _nodeport_allowed(server), "the last good set keeps serving"
        assert server.metric("edgewarden_policies_loaded") == 3
        assert server.get("/readyz").status_code == 200
    finally:
        server.stop()


def test_fifty_concurrent_loadbalancer_creates_under_a_cap_of_two_allow_exactly_two(
    default_server: RunningServer,
) -> None:
    service = load_object("services/loadbalancer.yaml")

    async def create(client: httpx.AsyncClient, index: int) -> bool:
        obj = {**service, "metadata": {**service["metadata"], "name": f"lb-{index}"}}
        review = make_review("CREATE", "burst", obj)
        response = await client.post("/validate", content=orjson.dumps(review),
                                     headers={"content-type": "application/json"},
                                     extensions=SNI)
        assert response.status_code == 200
        return bool(response.json()["response"]["allowed"])

    async def burst() -> list[bool]:
        async with default_server.async_client() as client:
            return await asyncio.gather(*(create(client, i) for i in range(50)))

    results = asyncio.run(burst())
    assert sum(results) == 2


def test_dry_run_requests_reserve_nothing(default_server: RunningServer) -> None:
    service = load_object("services/loadbalancer.yaml")
    for index in range(3):
        obj = {**service, "metadata": {**service["metadata"], "name": f"dry-{index}"}}
        review = make_review("CREATE", "dev", obj, dry_run=True)
        assert default_server.review("/validate", review)["allowed"] is True
    real = make_review("CREATE", "dev", service)
    assert default_server.review("/validate", real)["allowed"] is True


class _ExplodingEngine:
    def evaluate(self, request: object, cluster: object) -> None:
        raise RuntimeError("boom: s3cr3t object text")


def test_internal_error_answers_per_failure_policy_not_500(
    default_server: RunningServer,
) -> None:
    loaded = default_server.runtime.state.policies
    assert loaded is not None
    engines = loaded.engine, loaded.mutate_engine
    loaded.engine = loaded.mutate_engine = _ExplodingEngine()  # type: ignore[assignment]
    try:
        service = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
        response = default_server.review("/validate", service)
        # The default Service policies say failurePolicy: Fail.
        assert response["allowed"] is False
        assert response["status"]["code"] == 500
        assert default_server.review("/mutate", service)["allowed"] is False
    finally:
        loaded.engine, loaded.mutate_engine = engines
    assert default_server.metric("edgewarden_requests_total",
                                 endpoint="validate", result="error") >= 1
