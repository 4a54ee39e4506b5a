"""PolicyException objects: admitted with a warning naming the exception, its ticket and
expiry, and an audit annotation; not once the server's clock reaches the expiry; the expiry
exported for the alert while the exception is active. Closed by default: honoured only once
enabled, only in the namespaces named, only for a bounded lifetime; each one left out is
logged with the reason."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.support import eventually, service
from tests.support.clock import START
from webhook.policy.model.exception_rules import ExceptionRules

from .conftest import ServeFactory

EXPIRES = "2030-03-18T00:00:00Z"  # a few hours after the clock's START
EXPIRY = 1_900_022_400.0
# The API server stamps creationTimestamp; the double keeps one given (the clock is in 2030).
CREATED = "2030-03-17T00:00:00Z"
IN_PRODUCTION = ExceptionRules(enabled=True, namespaces=frozenset({"production"}))


def legacy_exception(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "legacy-gateway", "namespace": "production",
                     "creationTimestamp": CREATED},
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
    served = serve(crd_api, exception_rules=IN_PRODUCTION)
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
    served = serve(crd_api, exception_rules=IN_PRODUCTION)
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


def marker_exception(namespace: str = "production") -> dict[str, Any]:
    """An exception for another object: once it is read, every exception has been."""
    marker = legacy_exception()
    marker["metadata"].update(name="marker", namespace=namespace)
    marker["spec"]["match"] = {"names": ["other"]}
    return marker


def read_all(served: Any, refs: set[str]) -> None:
    exceptions = served.controllers.exceptions
    eventually(lambda: refs <= {*exceptions.left_out, *(e.ref for e in exceptions.registry)},
               what="the exceptions to be read")


def test_exceptions_are_off_by_default_and_say_so_once(
    crd_api: KubeApi, serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(crd_api)  # no --enable-exceptions
    crd_api.create(legacy_exception())
    crd_api.create(marker_exception())
    with caplog.at_level(logging.WARNING, "edgewarden.controllers"):
        read_all(served, {"production/legacy-gateway", "production/marker"})
    assert not admit_gateway(served)["allowed"]
    assert len(served.controllers.registry.current) == 0
    kind, why = served.controllers.exceptions.left_out["production/legacy-gateway"]
    assert kind == "Ignored" and "--enable-exceptions" in why
    said = [r.getMessage() for r in caplog.records if "PolicyExceptions are off" in r.getMessage()]
    assert len(said) == 1, said


def test_an_exception_outside_the_allowed_namespaces_exempts_nothing_and_is_logged(
    crd_api: KubeApi, serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(crd_api, exception_rules=ExceptionRules(
        enabled=True, namespaces=frozenset({"policy-exceptions"})))
    crd_api.create(legacy_exception())
    with caplog.at_level(logging.ERROR, "edgewarden.controllers"):
        read_all(served, {"production/legacy-gateway"})
    assert not admit_gateway(served)["allowed"]
    kind, why = served.controllers.exceptions.left_out["production/legacy-gateway"]
    assert kind == "Ignored"
    assert why == ("namespace production is not one PolicyExceptions may live in "
                   "(--exception-namespace: policy-exceptions)")
    assert [r.getMessage() for r in caplog.records
            if "production/legacy-gateway is ignored" in r.getMessage()] == [
        f"PolicyException production/legacy-gateway is ignored and exempts nothing: {why}"]


def test_an_exception_living_longer_than_the_maximum_exempts_nothing(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    served = serve(crd_api, exception_rules=ExceptionRules(
        enabled=True, namespaces=frozenset({"production"}), max_days=30))
    too_long = legacy_exception(expiresAt="2030-05-01T00:00:00Z")  # 45 days after creation
    crd_api.create(too_long)
    within = marker_exception()
    within["spec"]["expiresAt"] = "2030-04-16T00:00:00Z"  # exactly 30 days: allowed
    crd_api.create(within)
    read_all(served, {"production/legacy-gateway", "production/marker"})
    assert not admit_gateway(served)["allowed"]
    assert [e.ref for e in served.controllers.registry] == ["production/marker"]
    kind, why = served.controllers.exceptions.left_out["production/legacy-gateway"]
    assert (kind, why) == ("Ignored", "expiresAt is 45.0 days after its creation, more than "
                                      "the maximum of 30 (--max-exception-days)")


def ready(api: KubeApi, namespace: str, name: str) -> tuple[str, str, str] | None:
    """The Ready condition the leader wrote on a PolicyException: (status, reason, message)."""
    status = api.get("policyexceptions", name, namespace=namespace).get("status") or {}
    found = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
    return (found[0]["status"], found[0]["reason"], found[0]["message"]) if found else None


def test_each_exception_says_in_its_status_whether_it_is_honoured_and_why_not(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    serve(crd_api, exception_rules=IN_PRODUCTION)
    crd_api.create(legacy_exception(approvedBy="alice@example.com"))
    crd_api.create(marker_exception("dev"))
    broken = legacy_exception(match={})
    broken["metadata"]["name"] = "broken"
    crd_api.create(broken)

    honoured = eventually(lambda: ready(crd_api, "production", "legacy-gateway"),
                          what="the honoured exception's status")
    assert honoured == ("True", "Honoured", "exempts what it matches until "
                        "2030-03-18T00:00:00Z (approved by alice@example.com)")
    elsewhere = eventually(lambda: ready(crd_api, "dev", "marker"),
                           what="the ignored exception's status")
    assert elsewhere == ("False", "Ignored", "namespace dev is not one PolicyExceptions may "
                         "live in (--exception-namespace: production)")
    invalid = eventually(lambda: ready(crd_api, "production", "broken"),
                         what="the invalid exception's status")
    assert invalid[:2] == ("False", "Invalid") and "spec.match" in invalid[2]
    generation = crd_api.get("policyexceptions", "legacy-gateway",
                             namespace="production")["status"]["observedGeneration"]
    assert generation == 1


def test_with_exceptions_off_every_status_says_so(crd_api: KubeApi,
                                                  serve: ServeFactory) -> None:
    serve(crd_api)
    crd_api.create(legacy_exception())
    status = eventually(lambda: ready(crd_api, "production", "legacy-gateway"),
                        what="the status of an exception while they are off")
    assert status == ("False", "Ignored",
                      "PolicyExceptions are off (serve --enable-exceptions turns them on)")
