"""serve --manage-quotas: the leader keeps a ResourceQuota on services.loadbalancers equal to
each namespace's LoadBalancer cap, follows the cap when it changes, deletes the quotas it
owns when the cap goes away, and never touches a quota it does not own."""

from __future__ import annotations

from typing import Any

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace

from .conftest import Served, ServeFactory

QUOTA = "edgewarden-loadbalancers"


def hard(api: KubeApi, ns: str) -> str | None:
    if not api.exists("resourcequotas", QUOTA, namespace=ns):
        return None
    quota = api.get("resourcequotas", QUOTA, namespace=ns)
    return str(quota["spec"]["hard"]["services.loadbalancers"])


def quota_writes(api: KubeApi) -> list[Any]:
    return [r for r in api.writes() if r.plural == "resourcequotas"]


def synced(served: Served) -> int:
    quotas = served.controllers.quotas
    assert quotas is not None
    passes = quotas.passes
    quotas.trigger()
    return eventually(lambda: quotas.passes > passes and quotas.passes, timeout=20,
                      what="a quota pass")


def test_each_capped_namespace_gets_its_cap_as_a_quota(crd_api: KubeApi,
                                                      serve: ServeFactory) -> None:
    served = serve(crd_api, manage_quotas=True, quota_interval_seconds=0.2)
    eventually(lambda: hard(crd_api, "production") == "2" and hard(crd_api, "dev") == "2",
               timeout=20, what="the default cap of 2 as quotas")
    quota = crd_api.get("resourcequotas", QUOTA, namespace="production")
    assert quota["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "edgewarden"

    # Nothing changed: passes read, and write nothing.
    writes = len(quota_writes(crd_api))
    synced(served)
    synced(served)
    assert len(quota_writes(crd_api)) == writes

    # The namespace annotation raises the cap: the quota follows.
    ns = crd_api.get("namespaces", "dev")
    ns["metadata"].setdefault("annotations", {})["edgewarden.dev/max-loadbalancers"] = "5"
    crd_api.update(ns)
    eventually(lambda: hard(crd_api, "dev") == "5", timeout=20, what="the raised cap")


def test_a_quota_it_does_not_own_is_left_alone_and_its_own_go_with_the_cap(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.create(namespace(name="team-a", labels={}))
    crd_api.create({"apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": QUOTA, "namespace": "team-a"},
                    "spec": {"hard": {"services.loadbalancers": "9"}}})
    # kube-system is excluded from the LoadBalancer cap: a quota of ours there is stale.
    crd_api.create(namespace(name="kube-system", labels={}))
    crd_api.create({"apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": QUOTA, "namespace": "kube-system",
                                 "labels": {"app.kubernetes.io/managed-by": "edgewarden"}},
                    "spec": {"hard": {"services.loadbalancers": "2"}}})
    served = serve(crd_api, manage_quotas=True, quota_interval_seconds=0.2)
    eventually(lambda: hard(crd_api, "production") == "2", timeout=20, what="our quotas")
    eventually(lambda: hard(crd_api, "kube-system") is None, timeout=20,
               what="our quota where no cap applies deleted")
    synced(served)
    assert hard(crd_api, "team-a") == "9"  # somebody else's: untouched
    assert not [r for r in quota_writes(crd_api) if r.namespace == "team-a"
                and r.method in ("PUT", "DELETE", "PATCH")]
