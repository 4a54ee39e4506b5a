"""The enforcing webhook (deploy/overlays/kind) in a real cluster: what a user of kubectl or
of any client sees when the default policies say no, or change what they create."""

from __future__ import annotations

import pytest

from .helpers import (
    INTERNAL_LB,
    Cluster,
    NamespaceFactory,
    Refusal,
    eventually,
    ingress,
    refusal,
    service,
)

pytestmark = pytest.mark.deployed("enforce")


def test_nodeport_service_in_production_namespace_is_refused_with_our_message(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()  # environment=production
    answer = refusal(lambda: cluster.core.create_namespaced_service(
        ns, service("shop", "NodePort")))
    assert answer is not None, "a NodePort Service was created in a production namespace"
    assert answer.status == 403
    assert "deny-nodeport-in-production" in answer.message
    assert "shop" in answer.message
    assert "shop" not in cluster.services_in(ns)


def test_nodeport_service_outside_production_is_allowed(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"environment": "staging"})
    created = cluster.core.create_namespaced_service(ns, service("shop", "NodePort"))
    assert created.spec.type == "NodePort"


def test_third_loadbalancer_in_a_namespace_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    for name in ("lb-1", "lb-2"):
        cluster.core.create_namespaced_service(ns, service(name, "LoadBalancer"))

    # Each replica counts from its own watch cache (plus what it admitted itself): wait,
    # bounded, until a dry-run of the third is refused, then create it for real.
    def third_refused() -> Refusal | None:
        return refusal(lambda: cluster.core.create_namespaced_service(
            ns, service("lb-3", "LoadBalancer"), dry_run="All"))

    eventually(third_refused, "the webhook counting two LoadBalancers")
    answer = refusal(lambda: cluster.core.create_namespaced_service(
        ns, service("lb-3", "LoadBalancer")))
    assert answer is not None, "a third LoadBalancer Service was created"
    assert answer.status == 403
    assert "limit-loadbalancers-per-namespace" in answer.message
    assert cluster.services_in(ns) == {"lb-1", "lb-2"}


def test_loadbalancer_gets_the_internal_annotation(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    created = cluster.core.create_namespaced_service(ns, service("api", "LoadBalancer"))
    assert (created.metadata.annotations or {}).get(INTERNAL_LB) == "true"
    stored = cluster.core.read_namespaced_service("api", ns)
    assert (stored.metadata.annotations or {}).get(INTERNAL_LB) == "true"


def test_loadbalancer_keeps_the_scheme_its_owner_chose(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    created = cluster.core.create_namespaced_service(
        ns, service("api", "LoadBalancer", annotations={INTERNAL_LB: "false"}))
    assert created.metadata.annotations[INTERNAL_LB] == "false"


def test_loadbalancer_in_a_public_namespace_is_not_made_internal(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"edgewarden.dev/public-loadbalancers": "allowed"})
    created = cluster.core.create_namespaced_service(ns, service("edge", "LoadBalancer"))
    assert INTERNAL_LB not in (created.metadata.annotations or {})


def test_service_with_external_ips_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    answer = refusal(lambda: cluster.core.create_namespaced_service(
        ns, service("legacy", externalIPs=["203.0.113.10"])))
    assert answer is not None, "a Service with externalIPs was created"
    assert answer.status == 403
    assert "deny-external-ips" in answer.message


def test_ingress_without_tls_in_production_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()  # environment=production
    answer = refusal(lambda: cluster.networking.create_namespaced_ingress(
        ns, ingress("shop", "shop.example.com")))
    assert answer is not None, "an Ingress without TLS was created in production"
    assert answer.status == 403
    assert "require-ingress-tls-in-production" in answer.message


def test_ingress_with_tls_for_every_host_in_production_is_allowed(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()
    created = cluster.networking.create_namespaced_ingress(
        ns, ingress("shop", "shop.example.com", tls_hosts=["shop.example.com"]))
    assert created.metadata.name == "shop"


def test_server_side_dry_run_reserves_nothing(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    """`kubectl apply --dry-run=server` is judged (and mutated) like the real thing, but
    takes no LoadBalancer slot: two dry-runs, then two real creates, all go through."""
    ns = namespace({"team": "payments"})
    for name in ("lb-a", "lb-b"):
        judged = cluster.core.create_namespaced_service(
            ns, service(name, "LoadBalancer"), dry_run="All")
        assert (judged.metadata.annotations or {}).get(INTERNAL_LB) == "true"
    assert cluster.services_in(ns) == set()
    for name in ("lb-a", "lb-b"):
        cluster.core.create_namespaced_service(ns, service(name, "LoadBalancer"))
    assert cluster.services_in(ns) == {"lb-a", "lb-b"}
