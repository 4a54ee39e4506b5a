"""Issue 18 against a real kube-apiserver: hostile Policy objects (2,000 parentheses, 5,000
`!`, a 400-term and a 1 MiB allow-list) applied with kubectl each get their status, and a
Policy applied after them still serves (see conftest: these skip without tests/kube)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.policy.hostile import HOSTILE
from tests.support import eventually

from .conftest import Edgewarden
from .test_on_a_real_apiserver import policy, ready_condition


def test_hostile_policies_get_a_status_and_a_later_policy_still_serves(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str]
) -> None:
    running = edgewarden(now=time.time())
    namespace = test_namespace()
    running.register(namespace)
    names = [f"e2e-{h.name}" for h in HOSTILE]
    # Only this test's namespace: the reload guards' canary refuses a set that would deny
    # objects other tests left in the shared control plane.
    own = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    try:
        for hostile, name in zip(HOSTILE, names, strict=True):
            document: dict[str, Any] = hostile.document()
            document["metadata"]["name"] = name
            document["spec"]["match"]["namespaceSelector"] = own
            # Server-side: a client-side apply copies the object into an annotation, which
            # the API server caps at 256 KiB (the 1 MiB one would be refused for that).
            running.kubectl("apply", "--server-side", "-f", "-",
                            input=yaml.safe_dump(document, width=1 << 30))
        for hostile, name in zip(HOSTILE, names, strict=True):
            condition = eventually(lambda n=name: ready_condition(running, n), timeout=120,
                                   what=f"the Ready condition of {name}")
            if hostile.refusal is None:
                assert (condition["status"], condition["reason"]) == ("True", "Loaded")
                continue
            assert (condition["status"], condition["reason"]) == ("False", "Invalid")
            assert condition["message"].startswith(
                f"spec.validations[0].expression: CEL: {hostile.refusal}"), condition

        after = yaml.safe_load(policy(
            "e2e-after-hostile", "object.spec.type != 'NodePort'", "no NodePort after all"))
        after["spec"]["match"]["namespaceSelector"] = own
        running.kubectl("apply", "-f", "-", input=yaml.safe_dump(after))
        names.append("e2e-after-hostile")
        condition = eventually(lambda: ready_condition(running, "e2e-after-hostile"),
                               timeout=60, what="the later Policy's Ready condition")
        assert (condition["status"], condition["reason"]) == ("True", "Loaded")
        denied = running.kubectl("-n", namespace, "create", "service", "nodeport", "svc-0001",
                                 "--tcp=80:8080", check=False)
        assert denied.returncode != 0 and "no NodePort after all" in denied.stderr
        listed = running.kubectl("-n", namespace, "create", "service", "clusterip",
                                 "svc-0002", "--tcp=80:8080", check=False)
        assert listed.returncode == 0, listed.stderr  # the 400-term allow-list lets it in
        assert running.server.get("/readyz").status_code == 200
    finally:
        running.kubectl("delete", "policy.edgewarden.dev", *names, "--ignore-not-found",
                        check=False)
