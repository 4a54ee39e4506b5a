"""`edgewarden serve` reading the cluster from a real API server: its list+watch cache
syncs what exists, follows changes, and survives an API server restart and an etcd
compaction (the watch then gets 410 Gone and the cache lists again)."""

from __future__ import annotations

from .helpers import Cluster, NamespaceFactory, Refusal, eventually, refusal, service
from .installation import metric_sum
from .local import LocalInstallation

LIMIT = "limit-loadbalancers-per-namespace"


def third_loadbalancer(cluster: Cluster, namespace: str, name: str = "lb-3") -> Refusal | None:
    return refusal(lambda: cluster.core.create_namespaced_service(
        namespace, service(name, "LoadBalancer"), dry_run="All"))


def cache(local: LocalInstallation, field: str, kind: str) -> float:
    return metric_sum(local.webhook_metrics(), f"edgewarden_cluster_cache_{field}", kind=kind)


def test_a_restarted_server_counts_what_existed_before_it_started(
    local: LocalInstallation, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    for name in ("lb-1", "lb-2"):
        cluster.core.create_namespaced_service(ns, service(name, "LoadBalancer"))
    local.stop_webhook()
    local.start_webhook()  # returns once /readyz says the cache has synced
    assert cache(local, "synced", "Service") == 1
    assert cache(local, "objects", "Service") >= 2
    # A new process holds no reservation: only its initial LIST can know of lb-1 and lb-2.
    answer = third_loadbalancer(cluster, ns)
    assert answer is not None and LIMIT in answer.message


def test_the_cache_follows_a_namespace_relabel(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"environment": "staging"})
    assert cluster.nodeport_dry_run(ns, "shop") is None

    def relabel(environment: str) -> None:
        cluster.core.patch_namespace(ns, {"metadata": {"labels": {"environment": environment}}})

    relabel("production")
    eventually(lambda: cluster.nodeport_dry_run(ns, "shop"),
               "a NodePort refused once the namespace is labelled production")
    relabel("staging")
    eventually(lambda: True if cluster.nodeport_dry_run(ns, "shop") is None else None,
               "a NodePort allowed again once the namespace is back to staging")


def test_the_cache_survives_an_api_server_restart_and_an_etcd_compaction(
    local: LocalInstallation, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    cluster.core.create_namespaced_service(ns, service("lb-1", "LoadBalancer"))
    relists = cache(local, "relists_total", "Service")

    # While the API server is down, etcd's history up to now is compacted: the
    # resourceVersion the cache's watch resumes from no longer exists anywhere.
    local.plane.stop_apiserver()
    local.plane.compact_etcd()
    local.plane.start_apiserver()

    eventually(lambda: cache(local, "relists_total", "Service") > relists or None,
               "the Service watch to get 410 Gone and list again", timeout=90)
    assert local.ready()
    # The cache is live again: a change made now is followed.
    cluster.core.create_namespaced_service(ns, service("lb-2", "LoadBalancer"))
    eventually(lambda: third_loadbalancer(cluster, ns),
               "the third LoadBalancer refused: the cache saw lb-1 and lb-2")
