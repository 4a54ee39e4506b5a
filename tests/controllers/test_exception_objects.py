"""PolicyException objects: admitted with a warning naming the exception, its ticket and
expiry, and an audit annotation; not once the server's clock reaches the expiry; the expiry
exported for the alert while the exception is active."""

from __future__ import annotations

from typing import Any

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.support import eventually, service

from .conftest import START, ServeFactory

EXPIRES = "2030-03-18T00:00:00Z"  # a few hours after the clock's START
EXPIRY = 1_900_022_400.0


def legacy_exception(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "legacy-gateway", "namespace": "production"},
        "spec": {"policies": ["deny-nodeport-in-production"],
                 "match": {"names": ["gateway"]}, "expiresAt": EXPIRES,
                 "ticket": "PLAT-42", "reason": "retiring in Q2", **spec},
    }


def admit_gateway(served: Any) -> dict[str, Any]:
    obj = service(name="gateway", namespace="production", type="NodePort")
    return served.server.review("/validate", make_review("CREATE", "production", obj))


def test_an_exception_admits_with_a_warning_then_stops_once_expired(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    served = serve(crd_api)
    assert not admit_gateway(served)["allowed"]
    crd_api.create(legacy_exception())

    answer = eventually(lambda: (a := admit_gateway(served))["allowed"] and a,
                        what="the exception to admit the NodePort")
    [warning] = answer["warnings"]
    assert warning.startswith(
        "PolicyException production/legacy-gateway (ticket PLAT-42, expires "
        "2030-03-18T00:00:00Z) admits what deny-nodeport-in-production would deny: Service "
        "gateway is type NodePort")
    [line] = [entry for entry in served.server.audit_lines() if entry["action"] == "exempted"]
    assert (line["name"], line["policy"]) == ("gateway", "deny-nodeport-in-production")
    assert answer["auditAnnotations"]["deny-nodeport-in-production.exception"].startswith(
        "production/legacy-gateway ticket=PLAT-42 expiresAt=2030-03-18T00:00:00Z would deny")
    assert served.server.metric("edgewarden_policy_exception_expiry_timestamp_seconds",
                                namespace="production", exception="legacy-gateway",
                                policy="deny-nodeport-in-production") == EXPIRY
    assert served.server.metric("edgewarden_exemptions_total",
                                policy="deny-nodeport-in-production", would="deny") == 1

    served.clock.now = EXPIRY  # the expiry instant: expired from here on
    answer = admit_gateway(served)
    assert not answer["allowed"] and "warnings" not in answer
    assert served.server.metric("edgewarden_policy_exception_expiry_timestamp_seconds",
                                namespace="production", exception="legacy-gateway",
                                policy="deny-nodeport-in-production") == 0.0
    served.clock.now = START


def test_an_exception_that_does_not_load_exempts_nothing(crd_api: KubeApi,
                                                        serve: ServeFactory) -> None:
    served = serve(crd_api)
    # The CRD's schema would refuse this at the API server; the double stores anything.
    crd_api.create(legacy_exception(match={}))
    good = legacy_exception()
    good["metadata"]["name"] = "marker"
    good["spec"]["match"] = {"names": ["other"]}
    crd_api.create(good)
    eventually(lambda: served.server.metric(
        "edgewarden_policy_exception_expiry_timestamp_seconds", exception="marker"),
        what="the exceptions to be read")
    assert not admit_gateway(served)["allowed"]
    assert "production/legacy-gateway" in served.controllers.exceptions.invalid
