"""Policy objects go through the reload guards files go through: one that would deny what
already runs is refused and its status names the objects; one that no longer passes keeps
its last good generation serving and says so; deleting one is a removal on purpose."""

from __future__ import annotations

from typing import Any

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.support import eventually, service

from .conftest import Served, ServeFactory
from .test_policy_objects import policy, ready

FREEZE_SERVICES = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: freeze-services}
spec:
  failurePolicy: Fail
  match: {kinds: [Service]}
  validations:
    - expression: "false"
      message: Services are frozen
"""


def condition_of(served: Served, name: str, generation: int) -> dict[str, Any] | None:
    condition = ready(served.status(name))
    return condition if condition and condition["observedGeneration"] == generation else None


def update_existing(served: Served) -> dict[str, Any]:
    """What an UPDATE of the existing Service to itself gets (a no-op kubectl apply)."""
    existing = service(name="existing", namespace="dev")
    return served.server.review("/validate", make_review("UPDATE", "dev", existing, existing))


def test_a_policy_object_that_denies_every_existing_service_is_refused_and_names_them(
    crd_api: KubeApi, serve: ServeFactory,
) -> None:
    crd_api.create(service(name="existing", namespace="dev"))
    crd_api.create(service(name="other", namespace="production"))
    served = serve(crd_api)
    before = served.serving()
    crd_api.create(policy(FREEZE_SERVICES))

    condition = eventually(lambda: condition_of(served, "freeze-services", 1),
                           what="a Ready condition")
    assert (condition["status"], condition["reason"]) == ("False", "Refused")
    message = condition["message"]
    assert message.startswith("refused (denies): the new policy set denies 2 existing "
                              "object(s) the serving set admits, of 2 judged (100%, more "
                              "than --max-canary-denial-share 1%)")
    assert "Service dev/existing (UPDATE, CREATE: freeze-services)" in message
    assert "Service production/other (UPDATE, CREATE: freeze-services)" in message
    assert served.serving() == before
    assert update_existing(served)["allowed"] is True
    assert served.server.metric("edgewarden_policy_reloads_refused_total",
                                reason="denies") >= 1
    last = served.server.get("/readyz").json()["policies"]["lastReload"]
    assert last["reason"] == "denies" and "Service dev/existing" in last["message"]


def test_a_refused_generation_keeps_the_last_good_one_serving(
    crd_api: KubeApi, serve: ServeFactory,
) -> None:
    crd_api.create(service(name="existing", namespace="dev"))
    served = serve(crd_api)
    crd_api.create(policy())  # deny-nodeport-everywhere
    eventually(lambda: (condition_of(served, "deny-nodeport-everywhere", 1) or {})
               .get("status") == "True", what="generation 1 to serve")
    frozen = policy(validations=[{"expression": "false"}], failurePolicy="Fail")
    crd_api.update(frozen)

    condition = eventually(lambda: condition_of(served, "deny-nodeport-everywhere", 2),
                           what="generation 2 judged")
    assert (condition["status"], condition["reason"]) == ("False", "Refused")
    assert "refused (denies)" in condition["message"]
    assert condition["message"].endswith("(generation 1 keeps serving)")
    assert "deny-nodeport-everywhere" in served.serving()
    nodeport = service(name="web", namespace="dev", type="NodePort")
    answer = served.server.review("/validate", make_review("CREATE", "dev", nodeport))
    assert not answer["allowed"], "generation 1 still denies NodePorts"
    assert update_existing(served)["allowed"] is True, "generation 2 does not serve"


def test_deleting_a_policy_object_needs_no_acknowledgement(
    crd_api: KubeApi, serve: ServeFactory,
) -> None:
    served = serve(crd_api)
    crd_api.create(policy())
    eventually(lambda: "deny-nodeport-everywhere" in served.serving(), what="served")
    crd_api.delete("policies", "deny-nodeport-everywhere")
    eventually(lambda: "deny-nodeport-everywhere" not in served.serving(), what="dropped")
    assert served.server.metric("edgewarden_policy_reloads_refused_total",
                                reason="removal") == 0
    assert served.server.metric("edgewarden_policy_reload_refused") == 0
