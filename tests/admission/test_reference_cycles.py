"""An answered request leaves no reference cycle behind: its objects (the parsed review, the
engine's context, uvicorn's request cycle) are freed by reference counting as it ends.

Each request used to leave two cycles (the engine's activation and its context; uvicorn's
request cycle and the transport wrapper that held it), so every parsed review lived until
the collector ran, and a collection of thousands of them stalled the event loop for
milliseconds: the p99 of an otherwise idle server (docs/http.md)."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.admission.harness import DEFAULT_POLICIES, FIXTURES, load_object, make_review
from tests.admission.test_response_writes import REQUEST, answer_at_once, connect, settle
from webhook.admission.app import create_app
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.state import ServerState
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.reservations import Reservations
from webhook.policy.load.loader import load_policies


@pytest.fixture
def collector_paused() -> Iterator[Callable[[], int]]:
    """Collects what exists now, then pauses the collector; the fixture's value collects
    again and says how many unreachable objects (cycles) were made meanwhile."""
    gc.collect()
    gc.disable()
    try:
        yield gc.collect
    finally:
        gc.enable()


def test_the_protocol_leaves_no_cycle_per_request(
    collector_paused: Callable[[], int],
) -> None:
    async def scenario() -> int:
        protocol, transport = connect(answer_at_once)
        protocol.data_received(REQUEST)  # the loop's own first-use objects, before counting
        await settle()
        collector_paused()
        for _ in range(50):
            protocol.data_received(REQUEST)
            await settle()
        unreachable = collector_paused()
        assert len(transport.writes) == 51
        protocol.connection_lost(None)
        return unreachable

    assert asyncio.run(scenario()) == 0


def _state() -> ServerState:
    state = ServerState(cluster=MemoryCluster.from_yaml(FIXTURES / "cluster.yaml"),
                        metrics=Metrics(), decision_log=DecisionLog(io.BytesIO()),
                        reservations=Reservations())
    state.install(LoadedPolicies.build(load_policies(DEFAULT_POLICIES), dry_run=False))
    return state


REVIEWS = {
    # denied (a NodePort in production), with violations and a deny message
    "denied": ("/validate", "payments", "services/nodeport.yaml"),
    # patched (the internal-LB annotation), through the mutating engine
    "patched": ("/mutate", "dev", "services/loadbalancer.yaml"),
    # an Ingress without TLS in production: denied by several policies, more programs
    "ingress": ("/validate", "payments", "ingresses/no-tls.yaml"),
}


@pytest.mark.parametrize("name", sorted(REVIEWS))
def test_an_admission_leaves_no_cycle(name: str, collector_paused: Callable[[], int]) -> None:
    path, namespace, fixture = REVIEWS[name]
    body = orjson.dumps(make_review("CREATE", namespace, load_object(fixture)))
    app = create_app(_state())
    answers: list[dict[str, Any]] = []
    scope = {"type": "http", "path": path, "method": "POST", "extensions": {},
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", b"%d" % len(body))]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            answers.append(orjson.loads(message["body"])["response"])

    async def scenario() -> int:
        await app(scope, receive, send)  # first use: caches, lazily built plans
        collector_paused()
        for _ in range(20):
            await app(scope, receive, send)
        return collector_paused()

    assert asyncio.run(scenario()) == 0
    assert len(answers) == 21
    expected = {"denied": False, "patched": True, "ingress": False}[name]
    assert all(a["allowed"] is expected for a in answers), answers[-1]
    if name == "patched":
        assert answers[-1].get("patch")
