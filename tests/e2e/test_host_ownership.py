"""Host ownership through a real API server (unique-ingress-hosts, match: HostPath): a host
granted to a namespace is refused to another that comes first, and a path under another
namespace's prefix is refused, as kubectl users see it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .helpers import Cluster, NamespaceFactory, Refusal, eventually, refusal

pytestmark = pytest.mark.deployed("enforce")

POLICY = "unique-ingress-hosts"
GRANTS = "edgewarden.dev/allowed-hostnames"


def ingress(name: str, host: str, path: str = "/", path_type: str = "Prefix") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [{
            "path": path, "pathType": path_type,
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }


def fresh_host(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.example.com"


def refused_once_seen(cluster: Cluster, namespace: str, body: dict[str, Any],
                      what: str) -> Refusal:
    """The webhook learns what the API server holds from its watch, a moment later: a dry
    run (judged, stored nowhere) until it is refused, then the real CREATE."""
    eventually(lambda: refusal(lambda: cluster.networking.create_namespaced_ingress(
        namespace, body, dry_run="All")), what)
    answer = refusal(lambda: cluster.networking.create_namespaced_ingress(namespace, body))
    assert answer is not None, "the Ingress was created"
    return answer


def test_a_granted_host_is_refused_to_a_namespace_that_comes_first(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    host = fresh_host("pay")
    owner = namespace({"team": "checkout"}, {GRANTS: host})
    other = namespace({"team": "other"})

    answer = refused_once_seen(cluster, other, ingress("pay", host),
                               "the webhook reserving the granted host")
    assert answer.status == 403
    assert POLICY in answer.message
    assert f"{host}/ is reserved for namespace {owner}" in answer.message
    assert refusal(lambda: cluster.networking.create_namespaced_ingress(
        owner, ingress("pay", host))) is None


def test_a_path_under_another_namespaces_prefix_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    host = fresh_host("shop")
    owner, other = namespace({"team": "shop"}), namespace({"team": "other"})
    cluster.networking.create_namespaced_ingress(owner, ingress("front", host))

    answer = refused_once_seen(cluster, other, ingress("login", host, "/login"),
                               "the webhook refusing a path under the owner's prefix")
    assert answer.status == 403
    assert f"{host}/login overlaps {host}/, held by Ingress {owner}/front" in answer.message
    # The same path on a host nobody holds is free.
    elsewhere = fresh_host("blog")
    assert refusal(lambda: cluster.networking.create_namespaced_ingress(
        other, ingress("login", elsewhere, "/login"))) is None
