"""What Gateway API objects expose: which hostnames reach which Services, through which
Gateway listener (port, protocol) and with or without TLS. The page's Gateway section.

Attachment follows the Gateway API rules (gateway.networking.k8s.io/v1), read from the objects
alone, without a controller's status:

- a route's ``parentRef`` names a Gateway (namespace defaults to the route's), optionally one
  listener by ``sectionName`` and/or ``port``;
- the listener must allow the route: ``allowedRoutes.namespaces.from`` Same (the default),
  All, or Selector (the namespace's labels), and ``allowedRoutes.kinds`` (default by protocol:
  HTTP and HTTPS take HTTPRoute and GRPCRoute, TLS takes TLSRoute, TCP TCPRoute, UDP UDPRoute);
- the hostnames must intersect: a route without hostnames takes the listener's (or any
  host); a listener without hostname takes the route's; ``*.example.com`` is a suffix match
  (``a.example.com`` and ``a.b.example.com``, not ``example.com``). A route whose hostnames
  all miss the listener's does not attach to it.

A backend in another namespace is reached only when a ReferenceGrant in that namespace allows
it; the page marks the ones without.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.policy.model.selectors import LabelSelector, Requirement

GATEWAY_GROUP = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")
# allowedRoutes.kinds when a listener does not say (Gateway API "Listener.AllowedRoutes").
DEFAULT_KINDS = {
    "HTTP": ("HTTPRoute", "GRPCRoute"),
    "HTTPS": ("HTTPRoute", "GRPCRoute"),
    "TLS": ("TLSRoute", "TCPRoute"),
    "TCP": ("TCPRoute",),
    "UDP": ("UDPRoute",),
}
ANY_HOST = "*"


@dataclass(frozen=True, slots=True)
class ListenerExposure:
    gateway: str  # namespace/name
    name: str
    port: str
    protocol: str
    hostname: str  # "" when the listener takes any host
    tls: str  # "terminated", "passthrough" or "" (plain)
    allowed_from: str  # Same | All | Selector
    allowed_kinds: tuple[str, ...]
    selector: LabelSelector | None = None  # allowedRoutes.namespaces.selector (Selector)

    @property
    def ref(self) -> str:
        return f"{self.gateway}/{self.name}"


@dataclass(frozen=True, slots=True)
class GatewayExposure:
    namespace: str
    name: str
    gateway_class: str
    listeners: tuple[ListenerExposure, ...]


@dataclass(frozen=True, slots=True)
class Backend:
    ref: str  # namespace/name:port
    granted: bool  # same namespace, or a ReferenceGrant allows it


@dataclass(frozen=True, slots=True)
class HostExposure:
    """One hostname a route serves through one listener, and the Services behind it."""

    host: str
    route: str  # Kind namespace/name
    listener: ListenerExposure
    backends: tuple[Backend, ...]


@dataclass(frozen=True, slots=True)
class RouteExposure:
    kind: str
    namespace: str
    name: str
    hostnames: tuple[str, ...]
    backends: tuple[Backend, ...]
    hosts: tuple[HostExposure, ...]
    unattached: tuple[str, ...]  # each parentRef that attaches nowhere, and why

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class GatewayReport:
    gateways: tuple[GatewayExposure, ...]
    routes: tuple[RouteExposure, ...]

    @property
    def hosts(self) -> list[HostExposure]:
        return sorted((h for r in self.routes for h in r.hosts),
                      key=lambda h: (h.host, h.route, h.listener.ref))

    @property
    def plain_hosts(self) -> int:
        """Hostnames served through a listener without TLS."""
        return sum(1 for h in self.hosts if not h.listener.tls)


def gateway_exposure(
    objects: Iterable[Mapping[str, Any]], namespace_labels: Mapping[str, Mapping[str, Any]]
) -> GatewayReport:
    """The Gateways and routes among ``objects`` (any others are ignored)."""
    gateways: dict[tuple[str, str], GatewayExposure] = {}
    routes: list[Mapping[str, Any]] = []
    grants: list[Mapping[str, Any]] = []
    for obj in objects:
        group = str(obj.get("apiVersion") or "").split("/")[0]
        kind = obj.get("kind")
        if group != GATEWAY_GROUP:
            continue
        if kind == "Gateway":
            gateway = _gateway(obj)
            gateways[(gateway.namespace, gateway.name)] = gateway
        elif kind in ROUTE_KINDS:
            routes.append(obj)
        elif kind == "ReferenceGrant":
            grants.append(obj)
    exposures = tuple(
        _route(obj, gateways, namespace_labels, grants)
        for obj in sorted(routes, key=lambda o: (_namespace(o), str(o.get("kind")), _name(o)))
    )
    return GatewayReport(tuple(gateways[k] for k in sorted(gateways)), exposures)


def _gateway(obj: Mapping[str, Any]) -> GatewayExposure:
    namespace, name = _namespace(obj), _name(obj)
    spec = _map(obj.get("spec"))
    listeners = []
    for raw in _list(spec.get("listeners")):
        listener = _map(raw)
        protocol = str(listener.get("protocol") or "")
        tls = ""
        if protocol == "HTTPS":
            tls = "terminated"
        elif protocol == "TLS":
            mode = str(_map(listener.get("tls")).get("mode") or "Terminate")
            tls = "passthrough" if mode == "Passthrough" else "terminated"
        allowed = _map(listener.get("allowedRoutes"))
        namespaces = _map(allowed.get("namespaces"))
        kinds = tuple(
            str(_map(k).get("kind")) for k in _list(allowed.get("kinds")) if _map(k).get("kind")
        ) or DEFAULT_KINDS.get(protocol, ())
        listeners.append(ListenerExposure(
            gateway=f"{namespace}/{name}",
            name=str(listener.get("name") or ""),
            port=str(listener.get("port") or "?"),
            protocol=protocol,
            hostname=str(listener.get("hostname") or ""),
            tls=tls,
            allowed_from=str(namespaces.get("from") or "Same"),
            allowed_kinds=kinds,
            selector=_selector(_map(namespaces.get("selector"))),
        ))
    return GatewayExposure(namespace, name, str(spec.get("gatewayClassName") or ""),
                           tuple(listeners))


def _route(
    obj: Mapping[str, Any],
    gateways: Mapping[tuple[str, str], GatewayExposure],
    namespace_labels: Mapping[str, Mapping[str, Any]],
    grants: list[Mapping[str, Any]],
) -> RouteExposure:
    kind, namespace, name = str(obj.get("kind")), _namespace(obj), _name(obj)
    spec = _map(obj.get("spec"))
    hostnames = tuple(str(h) for h in _list(spec.get("hostnames")) if h)
    backends = _backends(spec, kind, namespace, grants)
    hosts: list[HostExposure] = []
    unattached: list[str] = []
    for raw in _list(spec.get("parentRefs")):
        ref = _map(raw)
        if str(ref.get("kind") or "Gateway") != "Gateway":
            continue
        key = (str(ref.get("namespace") or namespace), str(ref.get("name") or ""))
        target = f"{key[0]}/{key[1]}"
        gateway = gateways.get(key)
        if gateway is None:
            unattached.append(f"{target}: no such Gateway among the objects")
            continue
        # A parentRef attaches when some listener it names takes the route; only a
        # parentRef that attaches nowhere is reported, with each listener's reason.
        reasons: list[str] = []
        attached = False
        for listener, source in _listeners(gateway, ref, target):
            reason = _refusal(listener, kind, namespace, gateway.namespace, namespace_labels)
            served = () if reason else _intersect(hostnames, listener.hostname)
            if not reason and not served:
                reason = f"no hostname in common with the listener's {listener.hostname}"
            if reason:
                reasons.append(f"{source}: {reason}")
                continue
            attached = True
            route_ref = f"{kind} {namespace}/{name}"
            hosts.extend(HostExposure(h, route_ref, listener, backends) for h in served)
        if not attached:
            unattached.extend(reasons or [f"{target}: no listener matches the parentRef"])
    return RouteExposure(kind, namespace, name, hostnames, backends, tuple(hosts),
                         tuple(unattached))


def _listeners(
    gateway: GatewayExposure, ref: Mapping[str, Any], target: str
) -> list[tuple[ListenerExposure, str]]:
    section, port = ref.get("sectionName"), ref.get("port")
    return [
        (listener, f"{target}/{listener.name}")
        for listener in gateway.listeners
        if (section is None or listener.name == str(section))
        and (port is None or listener.port == str(port))
    ]


def _refusal(
    listener: ListenerExposure,
    kind: str,
    route_namespace: str,
    gateway_namespace: str,
    namespace_labels: Mapping[str, Mapping[str, Any]],
) -> str:
    if kind not in listener.allowed_kinds:
        return f"the listener takes {', '.join(listener.allowed_kinds) or 'no routes'}"
    if listener.allowed_from == "Same" and route_namespace != gateway_namespace:
        return "the listener takes routes from its own namespace only"
    if listener.allowed_from == "Selector":
        labels = namespace_labels.get(route_namespace, {})
        if listener.selector is None or not listener.selector.matches(labels):
            return f"namespace {route_namespace} does not match the listener's selector"
    return ""


def _intersect(route_hosts: tuple[str, ...], listener_host: str) -> tuple[str, ...]:
    if not route_hosts:
        return (listener_host or ANY_HOST,)
    if not listener_host:
        return route_hosts
    served = []
    for host in route_hosts:
        if _covers(listener_host, host):
            served.append(host)
        elif _covers(host, listener_host):
            served.append(listener_host)
    return tuple(dict.fromkeys(served))


def _covers(pattern: str, host: str) -> bool:
    """``pattern`` (exact or ``*.suffix``) matches ``host`` (exact or wildcard)."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:])


def _backends(
    spec: Mapping[str, Any], kind: str, namespace: str, grants: list[Mapping[str, Any]]
) -> tuple[Backend, ...]:
    found: dict[str, Backend] = {}
    for rule in _list(spec.get("rules")):
        for raw in _list(_map(rule).get("backendRefs")):
            ref = _map(raw)
            if str(ref.get("group") or "") != "" or str(ref.get("kind") or "Service") != "Service":
                continue
            target = str(ref.get("namespace") or namespace)
            name = str(ref.get("name") or "")
            port = f":{ref['port']}" if ref.get("port") is not None else ""
            granted = target == namespace or _granted(grants, kind, namespace, target, name)
            found.setdefault(f"{target}/{name}{port}", Backend(f"{target}/{name}{port}", granted))
    return tuple(found.values())


def _granted(
    grants: list[Mapping[str, Any]], kind: str, namespace: str, target: str, name: str
) -> bool:
    for grant in grants:
        if _namespace(grant) != target:
            continue
        spec = _map(grant.get("spec"))
        sources = any(
            _map(f).get("group") == GATEWAY_GROUP and _map(f).get("kind") == kind
            and _map(f).get("namespace") == namespace
            for f in _list(spec.get("from"))
        )
        targets = any(
            str(_map(t).get("group") or "") == "" and _map(t).get("kind") == "Service"
            and (not _map(t).get("name") or _map(t).get("name") == name)
            for t in _list(spec.get("to"))
        )
        if sources and targets:
            return True
    return False


def _selector(raw: Mapping[str, Any]) -> LabelSelector:
    labels = tuple(sorted((str(k), str(v)) for k, v in _map(raw.get("matchLabels")).items()))
    expressions = tuple(
        Requirement(str(_map(e).get("key")), str(_map(e).get("operator")),
                    frozenset(str(v) for v in _list(_map(e).get("values"))))
        for e in _list(raw.get("matchExpressions"))
    )
    return LabelSelector(labels, expressions)


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("namespace") or "default")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name") or "")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
