"""The kinds policies match: group, version, kind and resource, and their short names.

A policy names what it judges either by short name (``match.kinds: [Service, HTTPRoute]``)
or the way ValidatingAdmissionPolicy's ``resourceRules`` do (group, versions, resources).
Both resolve at load to :class:`KindRef`; everything downstream (the engine's dispatch,
the cluster cache, ``check``, ``audit``, ``webhook-config``) follows the refs the loaded
policies name, and nothing else.

Every kind has a *key*, the string the engine dispatches on and the caches index by: the
short name for the kinds edgewarden knows (``Service``, ``HTTPRoute``), else
``Kind.group`` as kubectl writes it (``Gateway.networking.istio.io``), so two kinds of one
name in two groups never mix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True, slots=True, order=True)
class KindRef:
    """One kind of object: where the API serves it and what its admissions carry."""

    group: str
    kind: str
    resource: str
    versions: tuple[str, ...]  # the first is the one edgewarden lists and watches
    namespaced: bool = True

    @property
    def version(self) -> str:
        return self.versions[0]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return key_of(self.group, self.kind)

    def merged(self, other: KindRef) -> KindRef:
        """The same kind named twice (two policies, two rules): every version either names."""
        versions = tuple(dict.fromkeys((*self.versions, *other.versions)))
        return KindRef(self.group, self.kind, self.resource, versions, self.namespaced)


# The short names a policy may use in ``match.kinds`` (and PolicyException ``kinds``).
SHORT_NAMES: dict[str, KindRef] = {
    ref.kind: ref
    for ref in (
        KindRef("", "Service", "services", ("v1",)),
        KindRef("networking.k8s.io", "Ingress", "ingresses", ("v1",)),
        KindRef(GATEWAY_GROUP, "Gateway", "gateways", ("v1",)),
        KindRef(GATEWAY_GROUP, "HTTPRoute", "httproutes", ("v1",)),
        KindRef(GATEWAY_GROUP, "GRPCRoute", "grpcroutes", ("v1",)),
        KindRef(GATEWAY_GROUP, "TLSRoute", "tlsroutes", ("v1",)),
    )
}
NAMESPACE = KindRef("", "Namespace", "namespaces", ("v1",), namespaced=False)
# (group, resource) -> the known kind, for resourceRules that name no kind.
_BY_RESOURCE: dict[tuple[str, str], KindRef] = {
    (ref.group, ref.resource): ref for ref in (*SHORT_NAMES.values(), NAMESPACE)
}
_SHORT_KEYS = {(ref.group, ref.kind) for ref in (*SHORT_NAMES.values(), NAMESPACE)}


def key_of(group: str, kind: str) -> str:
    """The key of ``kind`` in ``group``: its short name when edgewarden knows it."""
    if not group or (group, kind) in _SHORT_KEYS:
        return kind
    return f"{kind}.{group}"


def group_of(api_version: str) -> str:
    group, _, _version = api_version.rpartition("/")
    return group


def key_of_object(obj: Mapping[str, Any]) -> str:
    """The key of an object's kind, from its ``apiVersion`` and ``kind``."""
    return key_of(group_of(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""))


def known_resource(group: str, resource: str) -> KindRef | None:
    return _BY_RESOURCE.get((group, resource))


_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def valid_resource_name(resource: str) -> bool:
    return bool(_RESOURCE_NAME.match(resource))


def merge(refs: Iterable[KindRef]) -> tuple[KindRef, ...]:
    """One ref per key, versions of every mention merged, sorted by key."""
    by_key: dict[str, KindRef] = {}
    for ref in refs:
        known = by_key.get(ref.key)
        by_key[ref.key] = ref if known is None else known.merged(ref)
    return tuple(by_key[key] for key in sorted(by_key))
