"""Policy objects that would break a loader: each gets an Invalid status (and a Warning
Event) naming the field and the bound, and the Policies applied after them still serve."""

from __future__ import annotations

from typing import Any

from tests.admission.harness import make_review
from tests.kubeapi import DEFAULT_RESOURCES, EDGEWARDEN_RESOURCES, KubeApi
from tests.kubeapi.resources import Resource
from tests.policy.hostile import HOSTILE
from tests.support import eventually, namespace, service

from .conftest import ServeFactory
from .test_policy_objects import policy, ready

EVENTS = Resource("events.k8s.io", "v1", "Event", "events")


def condition_of(api: KubeApi, name: str) -> dict[str, Any] | None:
    return ready(dict(api.get("policies", name).get("status") or {}))


def test_hostile_policies_get_a_status_and_a_later_policy_still_serves(
    serve: ServeFactory,
) -> None:
    with KubeApi(resources=(*DEFAULT_RESOURCES, *EDGEWARDEN_RESOURCES, EVENTS)) as api:
        api.create(namespace(name="dev", labels={"environment": "development"}))
        served = serve(api)
        for hostile in HOSTILE:
            api.create(hostile.document())
        for hostile in HOSTILE:
            condition = eventually(lambda h=hostile: condition_of(api, h.name),
                                   what=f"a Ready condition on {hostile.name}", timeout=120)
            if hostile.refusal is None:  # what the API server's CEL takes, we take
                assert (condition["status"], condition["reason"]) == ("True", "Loaded")
                continue
            assert (condition["status"], condition["reason"]) == ("False", "Invalid")
            assert condition["message"].startswith(
                f"spec.validations[0].expression: CEL: {hostile.refusal}")
            assert len(condition["message"]) < 600, "the expression is quoted, not copied"

        # Applied after them all: the controller is alive and serves it.
        api.create(policy())
        eventually(lambda: (condition_of(api, "deny-nodeport-everywhere") or {}).get(
            "status") == "True", what="the later Policy to load")
        nodeport = service(name="web", namespace="dev", type="NodePort")
        answer = served.server.review("/validate", make_review("CREATE", "dev", nodeport))
        assert not answer["allowed"], answer
        assert "no NodePort anywhere" in answer["status"]["message"]
        # The loaded allow-list judges as written.
        listed = service(name="svc-0007", namespace="dev")
        assert served.server.review("/validate", make_review("CREATE", "dev", listed))[
            "allowed"]

        refused = sorted(h.name for h in HOSTILE if h.refusal)
        events = eventually(
            lambda: sorted(e["regarding"]["name"]
                           for e in api.objects("events", namespace="edgewarden"))
            if len(api.objects("events", namespace="edgewarden")) >= len(refused) else None,
            what="a Warning Event per refused Policy")
        assert events == refused
        event = api.objects("events", namespace="edgewarden")[0]
        assert (event["type"], event["reason"], event["regarding"]["kind"]) == (
            "Warning", "Invalid", "Policy")
        assert event["regarding"]["uid"] == api.get("policies", event["regarding"]["name"])[
            "metadata"]["uid"]
