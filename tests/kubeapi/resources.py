"""The kinds the double serves, and how a request path names one of them.

A kind is one :class:`Resource` line; the double serves list, watch and CRUD for every
kind it is given, so adding one (a Gateway API kind, a CRD) is adding a line::

    GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "Gateway", "gateways")
    KubeApi(resources=(*DEFAULT_RESOURCES, GATEWAYS))

A kind with ``status=True`` behaves as a custom resource with the status subresource
does: ``metadata.generation`` counts changes to everything but metadata and status, a
write to the object keeps its status, and ``.../NAME/status`` writes only the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    status: bool = False  # the status subresource, and metadata.generation

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection, or of one object when ``name`` is given."""
        path = self.prefix
        if namespace is not None and self.namespaced:
            path += f"/namespaces/{namespace}"
        path += f"/{self.plural}"
        return f"{path}/{name}" if name is not None else path


NAMESPACES = Resource("", "v1", "Namespace", "namespaces", namespaced=False)
SERVICES = Resource("", "v1", "Service", "services")
SECRETS = Resource("", "v1", "Secret", "secrets")
CONFIGMAPS = Resource("", "v1", "ConfigMap", "configmaps")
RESOURCE_QUOTAS = Resource("", "v1", "ResourceQuota", "resourcequotas")
INGRESSES = Resource("networking.k8s.io", "v1", "Ingress", "ingresses")
VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
MUTATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
    namespaced=False,
)
LEASES = Resource("coordination.k8s.io", "v1", "Lease", "leases")
# edgewarden's own CRDs and the PolicyReport CRDs (wg-policy): not served by default, so a
# test can also show what happens where they are not installed.
POLICIES = Resource("edgewarden.dev", "v1alpha1", "Policy", "policies", namespaced=False,
                    status=True)
POLICY_EXCEPTIONS = Resource("edgewarden.dev", "v1alpha1", "PolicyException",
                             "policyexceptions", status=True)
POLICY_REPORTS = Resource("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports")
CLUSTER_POLICY_REPORTS = Resource("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport",
                                  "clusterpolicyreports", namespaced=False)
CLAIMS = Resource("edgewarden.dev", "v1alpha1", "Claim", "claims")
EDGEWARDEN_RESOURCES = (POLICIES, POLICY_EXCEPTIONS, POLICY_REPORTS, CLUSTER_POLICY_REPORTS)
DEFAULT_RESOURCES = (
    NAMESPACES,
    SERVICES,
    SECRETS,
    CONFIGMAPS,
    RESOURCE_QUOTAS,
    INGRESSES,
    VALIDATING_WEBHOOKS,
    MUTATING_WEBHOOKS,
    LEASES,
)


@dataclass(frozen=True)
class Route:
    """What a request path points at: a collection (``name`` None) or one object.

    ``namespace`` is None for cluster-scoped kinds and for lists across all namespaces.
    """

    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None = None  # "status"


class Catalog:
    """The served kinds, found by plural, by apiVersion and kind, or by request path."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self._resources: list[Resource] = []
        for resource in resources:
            self.add(resource)

    def add(self, resource: Resource) -> None:
        if any(r.plural == resource.plural for r in self._resources):
            raise ValueError(f"a kind with the plural {resource.plural!r} is already served")
        self._resources.append(resource)

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._resources))

    def by_plural(self, plural: str) -> Resource:
        for resource in self._resources:
            if resource.plural == plural:
                return resource
        raise KeyError(f"the double serves no {plural!r}")

    def of(self, obj: dict[str, object]) -> Resource:
        """The kind of a Kubernetes object, from its ``apiVersion`` and ``kind``."""
        for resource in self._resources:
            if (resource.api_version, resource.kind) == (obj.get("apiVersion"), obj.get("kind")):
                return resource
        raise KeyError(f"the double serves no {obj.get('apiVersion')} {obj.get('kind')}")

    def route(self, path: str) -> Route | None:
        for resource in self._resources:
            if not path.startswith(resource.prefix + "/"):
                continue
            found = _match(resource, path[len(resource.prefix) + 1 :].split("/"))
            if found is not None:
                return found
        return None


def _match(resource: Resource, parts: list[str]) -> Route | None:
    subresource = None
    if resource.status and parts[-1:] == ["status"] and len(parts) in (3, 5):
        subresource, parts = "status", parts[:-1]
        if len(parts) not in (2, 4):
            return None
    if len(parts) in (3, 4) and parts[0] == "namespaces" and resource.namespaced:
        if parts[2] == resource.plural:
            return Route(resource, parts[1], parts[3] if len(parts) == 4 else None, subresource)
        return None
    if parts[0] != resource.plural or len(parts) > 2:
        return None
    if subresource is not None:
        return Route(resource, None, parts[1], subresource)
    if len(parts) == 2 and resource.namespaced:
        return None  # a namespaced object is only addressed inside its namespace
    return Route(resource, None, parts[1] if len(parts) == 2 else None)
