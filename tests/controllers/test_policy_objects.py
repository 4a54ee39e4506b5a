"""Policy objects served beside the files: picked up with a status, refused with an error
status that names the field and expression while the old set keeps serving, and the same
reload guards as files (the canary)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.support import eventually, service

from .conftest import ServeFactory

NODEPORT_POLICY = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: deny-nodeport-everywhere}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: no NodePort anywhere
"""


def policy(text: str = NODEPORT_POLICY, **spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    document["spec"].update(spec)
    return document


def ready(status: dict[str, Any]) -> dict[str, Any] | None:
    conditions = status.get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), None)


def nodeport_in_dev(served: Any) -> dict[str, Any]:
    obj = service(name="web", namespace="dev", type="NodePort")
    return served.server.review("/validate", make_review("CREATE", "dev", obj))


def test_a_policy_object_is_served_and_its_status_says_so(crd_api: KubeApi,
                                                          serve: ServeFactory) -> None:
    served = serve(crd_api)
    assert nodeport_in_dev(served)["allowed"], "no shipped policy denies NodePorts in dev"
    crd_api.create(policy())
    status = eventually(lambda: ready(served.status("deny-nodeport-everywhere")),
                        what="a Ready condition")
    assert (status["status"], status["reason"], status["observedGeneration"]) == (
        "True", "Loaded", 1)
    assert served.status("deny-nodeport-everywhere")["loadedAt"] == "2030-03-17T17:46:40Z"
    assert "deny-nodeport-everywhere" in served.serving()
    answer = nodeport_in_dev(served)
    assert not answer["allowed"] and "no NodePort anywhere" in answer["status"]["message"]
    # Status writes go to the status subresource, and only there.
    writes = [r for r in crd_api.writes() if r.plural == "policies"]
    assert writes and all(r.path.endswith("/status") for r in writes)


def test_a_broken_policy_gets_an_error_status_and_the_old_generation_keeps_serving(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    served = serve(crd_api)
    crd_api.create(policy())
    eventually(lambda: (ready(served.status("deny-nodeport-everywhere")) or {}).get("status")
               == "True", what="generation 1 to serve")
    broken = policy(validations=[{"expression": "obj.spec.type != 'NodePort'"}])
    crd_api.update({**broken, "metadata": {"name": "deny-nodeport-everywhere"}})

    def invalid() -> dict[str, Any] | None:
        condition = ready(served.status("deny-nodeport-everywhere"))
        return condition if condition and condition["status"] == "False" else None

    condition = eventually(invalid, what="the Invalid condition")
    assert condition["reason"] == "Invalid" and condition["observedGeneration"] == 2
    message = condition["message"]
    assert "spec.validations[0].expression" in message
    assert "obj.spec.type != 'NodePort'" in message, "the expression is named"
    assert "generation 1 keeps serving" in message
    assert not nodeport_in_dev(served)["allowed"], "the old set still serves"
    readyz = served.server.get("/readyz").json()
    assert readyz["status"] == "ready"


def test_a_policy_the_canary_refuses_changes_nothing(crd_api: KubeApi,
                                                     serve: ServeFactory) -> None:
    crd_api.create(service(name="existing", namespace="dev"))
    served = serve(crd_api)
    before = served.serving()
    crd_api.create(policy(validations=[{
        "expression": "object.metadata.annotations['owner'] != ''"}], failurePolicy="Fail"))

    condition = eventually(lambda: ready(served.status("deny-nodeport-everywhere")),
                           what="a Ready condition")
    assert (condition["status"], condition["reason"]) == ("False", "Refused")
    assert "refused (canary)" in condition["message"]
    assert "Service dev/existing" in condition["message"]
    assert served.serving() == before
    assert served.server.metric("edgewarden_policy_reloads_refused_total", reason="canary") >= 1


def test_a_file_policy_wins_a_name_both_define(crd_api: KubeApi, serve: ServeFactory) -> None:
    served = serve(crd_api)
    shadow = policy()
    shadow["metadata"]["name"] = "deny-external-ips"
    crd_api.create(shadow)
    condition = eventually(lambda: ready(served.status("deny-external-ips")),
                           what="a Ready condition")
    assert (condition["status"], condition["reason"]) == ("False", "Conflict")
    assert nodeport_in_dev(served)["allowed"], "the file's deny-external-ips serves, not this"


def test_a_deleted_policy_object_stops_serving(crd_api: KubeApi, serve: ServeFactory) -> None:
    served = serve(crd_api)
    crd_api.create(policy())
    eventually(lambda: "deny-nodeport-everywhere" in served.serving(), what="served")
    crd_api.delete("policies", "deny-nodeport-everywhere")
    eventually(lambda: "deny-nodeport-everywhere" not in served.serving(), what="dropped")
    assert nodeport_in_dev(served)["allowed"]


def test_policies_only_in_the_cluster(crd_api: KubeApi, serve: ServeFactory, tmp_path) -> None:
    """No policy file at all: readiness waits for the cluster's, then serves them."""
    empty = tmp_path / "no-policies"
    empty.mkdir()
    crd_api.create(policy())
    served = serve(crd_api, policies=empty)
    eventually(lambda: served.server.get("/readyz").status_code == 200, what="ready")
    assert served.serving() == ["deny-nodeport-everywhere"]


def test_a_replica_that_cannot_read_policy_objects_is_not_ready(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.forbid("list", "policies")
    served = serve(crd_api, ready=False)

    def reasons() -> list[str]:
        answer = served.server.get("/readyz")
        assert answer.status_code == 503
        return [r for r in answer.json()["reasons"] if "list/watch failures" in r]

    [reason] = eventually(reasons, what="the reason in /readyz")
    assert "Policy and PolicyException objects not read yet" in reason
    crd_api.clear_refusals()
    eventually(lambda: served.server.get("/readyz").status_code == 200, what="ready")


def test_without_the_crds_the_server_serves_its_files(kube_api: KubeApi,
                                                      serve: ServeFactory) -> None:
    served = serve(kube_api)
    eventually(lambda: served.server.get("/readyz").status_code == 200, what="ready")
    assert "deny-nodeport-in-production" in served.serving()
