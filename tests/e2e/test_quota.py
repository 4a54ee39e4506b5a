"""The ResourceQuota objects `edgewarden quota` prints, applied to the cluster: with the
webhook off, the API server itself refuses the LoadBalancer above the cap (the backstop
docs/cluster.md recommends for several replicas)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml

from .helpers import INTERNAL_LB, Cluster, NamespaceFactory, eventually, refusal, service
from .installation import (
    MUTATING,
    VALIDATING,
    Installation,
    edgewarden,
    failure_policies,
    set_failure_policy,
    webhook_down,
)

QUOTA = "edgewarden-loadbalancers"


@pytest.fixture
def webhook_fails_open(installation: Installation) -> Iterator[None]:
    """Both configurations Ignore for the test (as they were afterwards): with the webhook
    down the API server then admits without it."""
    before = failure_policies(installation)
    for name in (VALIDATING, MUTATING):
        set_failure_policy(installation, name, "Ignore")
    yield
    for name, value in before.items():
        set_failure_policy(installation, name, value)


def test_edgewarden_quota_is_enforced_by_the_api_server_with_the_webhook_off(
    installation: Installation, cluster: Cluster, namespace: NamespaceFactory,
    webhook_fails_open: None,
) -> None:
    ns = namespace({"team": "payments"}, annotations={"edgewarden.dev/max-loadbalancers": "1"})
    printed = edgewarden(installation, "quota", "--namespace", ns)
    [quota] = [d for d in yaml.safe_load_all(printed) if d]
    assert quota["kind"] == "ResourceQuota" and quota["metadata"]["name"] == QUOTA
    assert quota["spec"]["hard"] == {"services.loadbalancers": "1"}  # the override
    installation.kubectl("apply", "-f", "-", input=printed)
    # The quota controller fills status.hard; until then the API server enforces nothing.
    eventually(lambda: cluster.core.read_namespaced_resource_quota(QUOTA, ns).status.hard,
               "the quota controller to fill status.hard")

    with webhook_down(installation):
        # The API server admits without the webhook once it applies Ignore.
        def admitted_without_webhook() -> str | None:
            name = f"lb-{uuid.uuid4().hex[:6]}"
            answer = refusal(lambda: cluster.core.create_namespaced_service(
                ns, service(name, "LoadBalancer")))
            return name if answer is None else None

        first = eventually(admitted_without_webhook, "a create admitted with the webhook down")
        stored = cluster.core.read_namespaced_service(first, ns)
        assert INTERNAL_LB not in (stored.metadata.annotations or {}), "the webhook ran"

        answer = refusal(lambda: cluster.core.create_namespaced_service(
            ns, service("lb-over", "LoadBalancer")))
        assert answer is not None, "a LoadBalancer above the quota was created"
        assert answer.status == 403
        assert f"exceeded quota: {QUOTA}" in answer.message
        assert "services.loadbalancers" in answer.message
