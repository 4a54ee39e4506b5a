"""The in-memory cluster keeps its unique-key index and its counts in step with each change
(``replay`` adds thousands of objects one by one): a replaced object's old keys are
released, a removed object's too, and a count is recomputed only for the namespace that
changed — with the same answers a fresh cluster built from the same objects gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).resolve().parents[2]
ENGINE = Engine(load_policies(REPO / "policies" / "unique-ingress-hosts.yaml",
                              REPO / "policies" / "limit-loadbalancers-per-namespace.yaml"))
[HOSTS] = ENGINE.key_indexes()
[LOADBALANCERS] = ENGINE.counters()


def ingress(namespace: str, name: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": [{"host": host}]}}


def service(namespace: str, name: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"type": kind}}


def holders(cluster: MemoryCluster, host: str) -> set[tuple[str, str, str]]:
    """Whoever holds a key overlapping the whole ``host`` (any path on it)."""
    found = cluster.key_holders(HOSTS, host)
    assert isinstance(found, dict) or hasattr(found, "values"), found
    return {holder for held in found.values() for holder in held}


def test_keys_follow_adds_replacements_and_removals() -> None:
    cluster = MemoryCluster([ingress("a", "web", "shop.example.com")])
    assert holders(cluster, "shop.example.com") == {("Ingress", "a", "web")}  # index built
    cluster.add(ingress("b", "web", "shop.example.com"))
    assert holders(cluster, "shop.example.com") == {("Ingress", "a", "web"),
                                                    ("Ingress", "b", "web")}
    cluster.add(ingress("a", "web", "api.example.com"))  # replaced: the old host is released
    assert holders(cluster, "shop.example.com") == {("Ingress", "b", "web")}
    assert holders(cluster, "api.example.com") == {("Ingress", "a", "web")}
    cluster.remove("Ingress", "b", "web")
    assert holders(cluster, "shop.example.com") == set()
    fresh = MemoryCluster(cluster.objects())
    for host in ("shop.example.com", "api.example.com"):
        assert holders(fresh, host) == holders(cluster, host)


def test_counts_are_per_namespace_and_follow_each_change() -> None:
    cluster = MemoryCluster([service("a", "lb-1", "LoadBalancer"),
                             service("b", "lb-1", "LoadBalancer")])
    assert cluster.counted_names("a", LOADBALANCERS) == {"lb-1"}
    assert cluster.counted_names("b", LOADBALANCERS) == {"lb-1"}
    cluster.add(service("a", "lb-2", "LoadBalancer"))
    cluster.add(service("b", "lb-1", "ClusterIP"))  # no longer counted
    assert cluster.counted_names("a", LOADBALANCERS) == {"lb-1", "lb-2"}
    assert cluster.counted_names("b", LOADBALANCERS) == set()
    cluster.remove("Service", "a", "lb-1")
    assert cluster.counted_names("a", LOADBALANCERS) == {"lb-2"}
    assert cluster.counted_names("c", LOADBALANCERS) == set()
