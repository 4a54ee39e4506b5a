"""kube-system and edgewarden's own namespace never reach the webhook: the API server does
not call it for them (the configurations' namespaceSelector), so the cluster's components
and the webhook's own repair are never judged, and never blocked while it is down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .helpers import INTERNAL_LB, Cluster, NamespaceFactory, service
from .installation import WEBHOOK_NAMESPACE, Installation, metric_sum

REQUESTS = "edgewarden_requests_total"


@pytest.fixture
def made_in() -> Iterator[list[tuple[Cluster, str, str]]]:
    """Services this test creates outside its own namespaces; deleted afterwards."""
    made: list[tuple[Cluster, str, str]] = []
    yield made
    for cluster, namespace, name in made:
        cluster.core.delete_namespaced_service(name, namespace)


def answered(installation: Installation) -> float:
    """Admission requests the webhook has answered, over its replicas."""
    return metric_sum(installation.webhook_metrics(), REQUESTS)


def test_a_service_in_kube_system_is_never_sent_to_the_webhook(
    installation: Installation, cluster: Cluster, namespace: NamespaceFactory,
    made_in: list[tuple[Cluster, str, str]],
) -> None:
    # The control: the same create elsewhere reaches both webhooks (mutate, then validate;
    # a LoadBalancer, as /mutate's matchConditions leave out what no mutation touches).
    elsewhere = namespace({"team": "payments"})
    before = answered(installation)
    cluster.core.create_namespaced_service(elsewhere, service("control", "LoadBalancer"))
    assert answered(installation) == before + 2

    name = f"e2e-{uuid.uuid4().hex[:8]}"
    before = answered(installation)
    created = cluster.core.create_namespaced_service(
        "kube-system", service(name, "LoadBalancer"))
    made_in.append((cluster, "kube-system", name))
    assert answered(installation) == before
    assert INTERNAL_LB not in (created.metadata.annotations or {})


def test_edgewarden_s_own_namespace_is_never_judged(
    installation: Installation, cluster: Cluster, made_in: list[tuple[Cluster, str, str]],
) -> None:
    """Its policies would refuse externalIPs and make a LoadBalancer internal anywhere
    else; in its own namespace the webhook is not even asked."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    before = answered(installation)
    created = cluster.core.create_namespaced_service(
        WEBHOOK_NAMESPACE, service(name, "LoadBalancer", externalIPs=["203.0.113.10"]))
    made_in.append((cluster, WEBHOOK_NAMESPACE, name))
    assert created.spec.external_ips == ["203.0.113.10"]
    assert INTERNAL_LB not in (created.metadata.annotations or {})
    assert answered(installation) == before
