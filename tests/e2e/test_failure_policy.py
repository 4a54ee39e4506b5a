"""failurePolicy with the webhook down, as the API server applies it: Fail refuses every
Service change it would have judged, Ignore admits them, and kube-system stays writable
either way (the namespaceSelector keeps it away from the webhook)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .helpers import Cluster, NamespaceFactory, eventually, refusal, service
from .installation import (
    MUTATING,
    VALIDATING,
    Installation,
    failure_policies,
    set_failure_policy,
    webhook_down,
)


@pytest.fixture
def restore_failure_policies(installation: Installation) -> Iterator[None]:
    before = failure_policies(installation)
    yield
    for name, value in before.items():
        set_failure_policy(installation, name, value)


def fresh(prefix: str) -> dict[str, object]:
    return service(f"{prefix}-{uuid.uuid4().hex[:6]}")


def test_with_the_webhook_down_fail_refuses_ignore_admits_and_kube_system_is_writable(
    installation: Installation, cluster: Cluster, namespace: NamespaceFactory,
    restore_failure_policies: None,
) -> None:
    ns = namespace({"team": "payments"})
    for name in (VALIDATING, MUTATING):
        set_failure_policy(installation, name, "Fail")
    with webhook_down(installation):
        # The API server applies a configuration change a moment after it is stored.
        def refused() -> str | None:
            answer = refusal(lambda: cluster.core.create_namespaced_service(ns, fresh("web")))
            return answer.message if answer is not None else None

        message = eventually(refused, "Fail to refuse while no webhook answers")
        assert "failed calling webhook" in message
        assert "edgewarden.dev" in message

        system = fresh("e2e-system")
        cluster.core.create_namespaced_service("kube-system", system)
        cluster.core.delete_namespaced_service(system["metadata"]["name"], "kube-system")

        for name in (VALIDATING, MUTATING):
            set_failure_policy(installation, name, "Ignore")

        def admitted() -> str | None:
            body = fresh("web")
            answer = refusal(lambda: cluster.core.create_namespaced_service(ns, body))
            return str(body["metadata"]["name"]) if answer is None else None

        created = eventually(admitted, "Ignore to admit while no webhook answers")
        assert created in cluster.services_in(ns)
