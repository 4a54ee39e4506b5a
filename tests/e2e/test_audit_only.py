"""The audit-only overlay (deploy/overlays/audit-only, `serve --dry-run`) in a real cluster:
the first step of a rollout denies nothing and patches nothing, yet records every decision.

"Nothing denied" alone would also hold for a webhook that is down (the overlay fails
open), so each test also finds the webhook's audit record of what it let through."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .helpers import INTERNAL_LB, Cluster, NamespaceFactory, eventually, ingress, service
from .kubeplane import ControlPlane

pytestmark = pytest.mark.deployed("audit-only")


def test_nodeport_service_in_production_is_allowed_and_recorded(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()  # environment=production
    created = cluster.core.create_namespaced_service(ns, service("shop", "NodePort"))
    assert created.spec.type == "NodePort"
    record = cluster.wait_for_audit_record(ns, "shop", "deny-nodeport-in-production")
    assert record["operation"] == "CREATE"
    assert record["action"] == "would deny"


def test_third_loadbalancer_is_allowed_and_recorded(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()
    for name in ("lb-1", "lb-2"):
        cluster.core.create_namespaced_service(ns, service(name, "LoadBalancer"))

    # Each replica counts from its own watch cache: wait (bounded) until a dry-run of a
    # third is recorded as over the cap, then create it for real.
    def third_recorded() -> dict[str, Any] | None:
        probe = f"lb-probe-{uuid.uuid4().hex[:6]}"
        cluster.core.create_namespaced_service(
            ns, service(probe, "LoadBalancer"), dry_run="All")
        records = cluster.audit_records(probe)
        return next((r for r in records
                     if r.get("policy") == "limit-loadbalancers-per-namespace"), None)

    eventually(third_recorded, "the audit-only webhook counting two LoadBalancers")
    cluster.core.create_namespaced_service(ns, service("lb-3", "LoadBalancer"))
    names = {s.metadata.name for s in cluster.core.list_namespaced_service(ns).items}
    assert names == {"lb-1", "lb-2", "lb-3"}
    record = cluster.wait_for_audit_record(ns, "lb-3", "limit-loadbalancers-per-namespace")
    assert record["action"] == "would deny"


def test_loadbalancer_is_not_patched_but_the_patch_is_recorded(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()
    created = cluster.core.create_namespaced_service(ns, service("api", "LoadBalancer"))
    assert INTERNAL_LB not in (created.metadata.annotations or {})
    record = cluster.wait_for_audit_record(ns, "api", "internal-loadbalancer")
    assert record["action"] == "would patch"


def test_ingress_without_tls_in_production_is_allowed_and_recorded(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace()
    created = cluster.networking.create_namespaced_ingress(
        ns, ingress("shop", "shop.example.com"))
    assert created.metadata.name == "shop"
    cluster.wait_for_audit_record(ns, "shop", "require-ingress-tls-in-production")


def test_the_api_server_audit_log_carries_the_webhook_s_audit_annotation(
    control_plane: ControlPlane, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    """What an Audit decision leaves in the cluster's own audit trail: the API server
    writes the webhook's auditAnnotations (key prefixed by the webhook's name) into the
    event of the request, where a SIEM reading API server audit logs finds it."""
    ns = namespace()
    cluster.core.create_namespaced_service(ns, service("shop", "NodePort"))

    def audit_event() -> dict[str, Any] | None:
        for event in control_plane.audit_events():
            ref = event.get("objectRef") or {}
            if (event.get("verb") == "create" and ref.get("resource") == "services"
                    and ref.get("namespace") == ns and ref.get("name") == "shop"
                    and event.get("stage") == "ResponseComplete"):
                return event
        return None

    event = eventually(audit_event, "the API server's audit event of the create")
    assert event["responseStatus"]["code"] == 201
    annotation = event["annotations"]["validate.edgewarden.dev/deny-nodeport-in-production"]
    assert "Service shop is type NodePort" in annotation
