"""ResourceQuota objects that back each LoadBalancer cap at the API server.

The webhook's cap is exact within one replica (admissions that count are serialised and
reserve their place), but two replicas each see the other's fresh Service only once their
watch delivers it, so a burst spread over replicas can overshoot. A ResourceQuota with
``services.loadbalancers`` is enforced by the API server itself, atomically, whatever the
number of webhook replicas: it is the backstop (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from webhook.offline.manifests import Manifest
from webhook.offline.scan import NAMESPACE, bare_namespace, namespace_objects
from webhook.policy.blocks.counters import cap_in_namespace
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.policy import Policy, PolicySet

QUOTA_NAME = "edgewarden-loadbalancers"
QUOTA_KEY = "services.loadbalancers"
MANAGED_BY = {"app.kubernetes.io/managed-by": "edgewarden"}
# A limit counts LoadBalancer Services when its `where` holds for one and not for a
# ClusterIP Service: probing beats parsing the CEL source.
_PROBE_NAME = "edgewarden-quota-probe"


def loadbalancer_caps(
    objects: Iterable[Manifest], policies: PolicySet, only: Iterable[str] | None = None
) -> dict[str, int]:
    """Per namespace, the smallest cap any LoadBalancer-counting limit sets there."""
    objects = list(objects)
    engine = Engine(policies)
    namespaces = namespace_objects(objects, {})
    for manifest in objects:
        if manifest.kind != NAMESPACE and manifest.namespace:
            namespaces.setdefault(manifest.namespace, bare_namespace(manifest.namespace))
    wanted = set(only) if only is not None else None
    if wanted is not None:
        for name in wanted:
            namespaces.setdefault(name, bare_namespace(name))
    chosen = {name: namespaces[name] for name in namespaces
              if wanted is None or name in wanted}
    return caps_in_namespaces(chosen, policies, engine)


def caps_in_namespaces(namespaces: Mapping[str, Mapping[str, Any]], policies: PolicySet,
                       engine: Engine | None = None) -> dict[str, int]:
    """Per Namespace object (by name), the smallest LoadBalancer cap any limit sets there;
    namespaces no limit caps are left out."""
    engine = engine or Engine(policies)
    limits = [p for p in policies.policies if counts_loadbalancers(engine, p)]
    caps: dict[str, int] = {}
    if not limits:
        return caps
    for name in sorted(namespaces):
        found = [cap_in_namespace(p, namespaces[name]) for p in limits]
        values = [cap for cap in found if cap is not None]
        if values:
            caps[name] = min(values)
    return caps


def counts_loadbalancers(engine: Engine, policy: Policy) -> bool:
    counter = engine.counter_for(policy, "Service")
    if counter is None:
        return False
    return counter.counts(_probe("LoadBalancer")) and not counter.counts(_probe("ClusterIP"))


def quota_object(namespace: str, cap: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {
                "edgewarden.dev/description": (
                    "Backstop for the edgewarden LoadBalancer cap, enforced by the API server"
                )
            },
        },
        "spec": {"hard": {QUOTA_KEY: str(cap)}},
    }


def render_quotas(
    objects: Iterable[Manifest], policies: PolicySet, only: Iterable[str] | None = None
) -> str:
    caps = loadbalancer_caps(objects, policies, only)
    if not caps:
        return "# no limit policy caps LoadBalancer Services in these namespaces\n"
    documents = [quota_object(namespace, cap) for namespace, cap in caps.items()]
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)


def _probe(service_type: str) -> Mapping[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": _PROBE_NAME, "namespace": "default"},
        "spec": {"type": service_type, "ports": [{"port": 80}]},
    }
