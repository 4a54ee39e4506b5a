"""Policy objects with ``spec.shadow: true`` against the API double: judged beside the
serving set and never answering, reported by the continuous audit in shadow PolicyReports of
their own, promoted and demoted by one field (docs/shadow.md)."""

from __future__ import annotations

from typing import Any

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.support import eventually, service

from .conftest import Served, ServeFactory
from .test_policy_objects import policy, ready

HOUR = 3600.0
NAME = "deny-nodeport-everywhere"  # test_policy_objects' policy: "no NodePort anywhere"


def nodeport(served: Served, name: str = "web") -> dict[str, Any]:
    obj = service(name=name, namespace="dev", type="NodePort")
    return served.server.review("/validate", make_review("CREATE", "dev", obj))


def readyz_shadow(served: Served) -> list[str]:
    return list(served.server.get("/readyz").json()["policies"].get("shadow") or [])


def test_a_shadow_policy_object_never_answers_and_one_field_promotes_and_demotes_it(
    crd_api: KubeApi, serve: ServeFactory,
) -> None:
    served = serve(crd_api)
    crd_api.create(policy(shadow=True))
    condition = eventually(lambda: ready(served.status(NAME)), what="a Ready condition")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True", "Loaded", "judged in shadow, never enforced")
    eventually(lambda: readyz_shadow(served) == [NAME], what="the candidate to be judged")
    assert NAME not in served.serving()

    assert nodeport(served)["allowed"] is True
    assert served.server.metric("edgewarden_shadow_decisions_total", policy=NAME,
                                result="deny") == 1

    # Promoted: spec.shadow false, and it denies.
    crd_api.update(policy(shadow=False))
    eventually(lambda: NAME in served.serving(), what="the promotion")
    answer = nodeport(served, "api")
    assert not answer["allowed"] and "no NodePort anywhere" in answer["status"]["message"]
    assert readyz_shadow(served) == []

    # Demoted again: like deleting a Policy object, it needs no --allow-policy-removal.
    crd_api.update(policy(shadow=True))
    eventually(lambda: NAME not in served.serving(), what="the demotion")
    eventually(lambda: (ready(served.status(NAME)) or {}).get("message")
               == "judged in shadow, never enforced", what="the demoted object's status")
    assert nodeport(served, "db")["allowed"] is True


def test_the_audit_writes_the_candidates_differences_to_shadow_reports(
    crd_api: KubeApi, serve: ServeFactory,
) -> None:
    crd_api.create(service(name="web", namespace="dev", type="NodePort"))
    crd_api.create(service(name="api", namespace="dev"))
    crd_api.create(policy(shadow=True))
    served = serve(crd_api, audit_interval_seconds=HOUR)
    audit = served.controllers.reports
    assert audit is not None

    def shadow_reports() -> dict[str, dict[str, Any]]:
        audit.trigger()
        return {r["metadata"]["name"]: r for r in crd_api.objects("policyreports", namespace="dev")
                if (r["metadata"].get("labels") or {}).get("edgewarden.dev/shadow") == "true"}

    def written() -> dict[str, dict[str, Any]] | None:
        # One run writes the namespaces' reports, then the cluster's: wait for the last.
        found = shadow_reports()
        return found if crd_api.exists("clusterpolicyreports", "edgewarden-shadow") else None

    found = eventually(written, timeout=60, interval=0.1, what="the shadow reports")
    report = found["edgewarden-shadow-dev"]
    (result,) = report["results"]
    assert result["resources"][0]["name"] == "web"
    assert (result["policy"], result["result"], result["message"]) == (
        NAME, "fail", "no NodePort anywhere")
    assert result["properties"]["enforced"] == "pass"
    ordinary = crd_api.get("policyreports", "edgewarden-dev", namespace="dev")
    assert all(r["policy"] != NAME for r in ordinary["results"])

    # Without candidates the shadow reports go; the ordinary ones stay.
    crd_api.delete("policies", NAME)

    def gone() -> bool:
        return not shadow_reports() and not crd_api.exists("clusterpolicyreports",
                                                            "edgewarden-shadow")
    eventually(gone, timeout=60, interval=0.1, what="the shadow reports to be deleted")
    assert crd_api.exists("policyreports", "edgewarden-dev", namespace="dev")
