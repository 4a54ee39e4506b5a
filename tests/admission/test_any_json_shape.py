"""No JSON object shape reaches the caller as an internal error (issue 14): whatever the
object, oldObject, metadata, labels or annotations hold, every policy either judges or
fails to evaluate as its failurePolicy says. The app is called in-process (ASGI), as fast
as hypothesis needs; the HTTP layer over TLS has its own tests."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.admission.app import create_app
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.state import ServerState
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.reservations import Reservations
from webhook.policy.load.loader import load_policies

from .harness import DEFAULT_POLICIES, FIXTURES

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
FIELDS = st.sampled_from(["metadata", "spec", "status"])
METADATA_FIELDS = st.sampled_from(["name", "namespace", "labels", "annotations",
                                   "generateName", "ownerReferences"])


@st.composite
def objects(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A Service or Ingress whose fields may hold anything JSON can."""
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind,
                           "metadata": {"name": "web", "namespace": "payments"},
                           "spec": {"type": "LoadBalancer"}}
    for _ in range(draw(st.integers(0, 3))):
        obj[draw(FIELDS)] = draw(JSON)
    if isinstance(obj.get("metadata"), dict):
        for _ in range(draw(st.integers(0, 3))):
            obj["metadata"][draw(METADATA_FIELDS)] = draw(JSON)
    return obj


@st.composite
def reviews(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Service", "Ingress"]))
    operation = draw(st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"]))
    new = draw(st.one_of(st.none(), objects(kind)))
    old = draw(st.one_of(st.none(), objects(kind)))
    group = "networking.k8s.io" if kind == "Ingress" else ""
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "a1", "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
        "name": draw(st.sampled_from(["web", ""])), "namespace": "payments",
        "operation": operation, "userInfo": draw(st.one_of(st.none(), JSON)),
        "object": new, "oldObject": old, "dryRun": draw(st.booleans()),
    }}


DEEP = '{"a":' * 1000 + "{}" + "}" * 1000  # deeper than orjson.dumps goes, so as text


@pytest.fixture(scope="module", autouse=True)
def quiet_decisions() -> Iterator[None]:
    """Thousands of expected evaluation errors would each be a log record: mute them here,
    and only here."""
    logger = logging.getLogger("edgewarden.decisions")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def state() -> ServerState:
    cluster = MemoryCluster.from_yaml(FIXTURES / "cluster.yaml")
    state = ServerState(cluster=cluster, metrics=Metrics(), decision_log=DecisionLog(io.BytesIO()),
                        reservations=Reservations())
    policies = load_policies(DEFAULT_POLICIES, FIXTURES / "shapes")
    state.install(LoadedPolicies.build(policies, dry_run=False))
    return state


def _answers(state: ServerState, review: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    body = review if isinstance(review, bytes) else orjson.dumps(review)

    async def call() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(state))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"content-type": "application/json"}
            return [await client.post(path, content=body, headers=headers)
                    for path in ("/mutate", "/validate")]

    found = []
    for response in asyncio.run(call()):
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()["response"]
        assert answer.get("status", {}).get("reason") != "InternalError", answer
        # The engine's last resort (an unexpected exception fails one policy) must not be
        # what handled it either: every shape is handled on purpose.
        assert "unexpected" not in orjson.dumps(answer).decode(), answer
        found.append(answer)
    return found


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(review=reviews())
def test_any_object_shape_is_judged_never_an_internal_error(
    state: ServerState, review: dict[str, Any]
) -> None:
    _answers(state, review)


@pytest.mark.parametrize("where", ["object", "labels", "annotations"])
def test_a_thousand_levels_deep_object_is_judged(state: ServerState, where: str) -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "web", "namespace": "payments"},
                           "spec": {"type": "LoadBalancer"}}
    if where == "object":
        obj["spec"]["deep"] = "DEEP"
    else:
        obj["metadata"][where] = "DEEP"
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "d1", "kind": {"group": "", "version": "v1", "kind": "Service"},
        "resource": {"group": "", "version": "v1", "resource": "services"},
        "name": "web", "namespace": "payments", "operation": "CREATE", "object": obj,
    }}
    _answers(state, orjson.dumps(review).replace(b'"DEEP"', DEEP.encode()))
