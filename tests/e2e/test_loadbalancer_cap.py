"""The LoadBalancer cap through the API server: what counts (a CREATE, an UPDATE that makes
a Service a LoadBalancer), what frees a place (a delete), and a burst of concurrent
CREATEs that must leave exactly the cap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

from .helpers import Cluster, NamespaceFactory, Refusal, eventually, refusal, service
from .installation import Installation, edgewarden

CAP = 2  # policies/limit-loadbalancers-per-namespace.yaml
LIMIT = "limit-loadbalancers-per-namespace"
BURST = 50


def loadbalancers_in(cluster: Cluster, namespace: str) -> set[str]:
    return {s.metadata.name for s in cluster.core.list_namespaced_service(namespace).items
            if s.spec.type == "LoadBalancer"}


def fill_to_the_cap(cluster: Cluster, namespace: str) -> None:
    """CAP LoadBalancers, and wait until the webhook counts them.

    With several replicas (kind), each counts from its own watch cache plus what it
    admitted itself, so the replica that answers next may not know yet: wait (bounded)
    until a dry-run of one more is refused."""
    for index in range(1, CAP + 1):
        cluster.core.create_namespaced_service(namespace, service(f"lb-{index}", "LoadBalancer"))
    eventually(lambda: refusal(lambda: cluster.core.create_namespaced_service(
        namespace, service("lb-probe", "LoadBalancer"), dry_run="All")),
        "the webhook counting the LoadBalancers")


def test_an_update_that_makes_a_service_a_loadbalancer_counts(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    cluster.core.create_namespaced_service(ns, service("web"))  # ClusterIP
    fill_to_the_cap(cluster, ns)
    answer = refusal(lambda: cluster.core.patch_namespaced_service(
        "web", ns, {"spec": {"type": "LoadBalancer"}}))
    assert answer is not None, "a ClusterIP Service became a third LoadBalancer"
    assert answer.status == 403
    assert LIMIT in answer.message
    assert f"(namespace {ns} has {CAP} of {CAP})" in answer.message
    assert cluster.core.read_namespaced_service("web", ns).spec.type == "ClusterIP"


def test_deleting_a_loadbalancer_frees_its_place(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    fill_to_the_cap(cluster, ns)
    cluster.core.delete_namespaced_service("lb-1", ns)

    # The webhook learns of the delete from its watch, a moment after the API server.
    def admitted() -> bool | None:
        return True if refusal(lambda: cluster.core.create_namespaced_service(
            ns, service("lb-3", "LoadBalancer"))) is None else None

    eventually(admitted, "the third LoadBalancer admitted once one was deleted")
    assert loadbalancers_in(cluster, ns) == {"lb-2", "lb-3"}


def test_fifty_concurrent_creates_leave_exactly_the_cap(
    installation: Installation, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    if installation.replicas > 1:
        # Each replica keeps its own reservations, so a burst spread over replicas can pass
        # one more per replica (docs/cluster.md); the ResourceQuota that `edgewarden quota`
        # prints is the documented backstop, enforced by the API server itself.
        installation.kubectl("apply", "-f", "-", input=edgewarden(
            installation, "quota", "--namespace", ns))
        eventually(lambda: cluster.core.read_namespaced_resource_quota(
            "edgewarden-loadbalancers", ns).status.hard, "the quota controller")
    api = config.new_client_from_config(config_file=str(installation.kubeconfig))
    api.configuration.connection_pool_maxsize = BURST  # one connection per request
    core = client.CoreV1Api(api)
    start = threading.Barrier(BURST)

    def create(index: int) -> Refusal | None:
        start.wait()
        return refusal(lambda: core.create_namespaced_service(
            ns, service(f"burst-{index}", "LoadBalancer")))

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(create, range(BURST)))
    refused = [a for a in answers if a is not None]
    assert len(refused) == BURST - CAP
    assert all(a.status == 403 for a in refused), {a.message for a in refused}
    assert len(loadbalancers_in(cluster, ns)) == CAP
