"""What each namespace exposes and what its load balancers cost: the HTML page's numbers.

Cost model (documented in docs/reports.md): every LoadBalancer Service provisions one
cloud load balancer billed ``cost_per_lb`` a month (default $18.25: AWS NLB/ALB base
price, $0.0225/h x 730 h, before traffic). LoadBalancers whose ports all look like HTTP(S)
could share one Ingress; consolidating a namespace's N such Services behind an Ingress
keeps one load balancer, saving (N - 1) x cost. It is a floor: an Ingress controller's
load balancer is usually shared by every namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.offline.results import LimitStatus, ScanReport
from webhook.policy.model.policy import INTERNAL_LB_FLAVOURS

DEFAULT_COST_PER_LB = 18.25
HTTP_PORTS = frozenset({80, 443, 8000, 8080, 8443, 3000, 5000, 9000})
# Annotations that make a LoadBalancer public on purpose (AWS Load Balancer Controller).
PUBLIC_SCHEME = ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internet-facing")
TENCENT_INTERNAL_SUBNET = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"
HUAWEI_AUTOCREATE = "kubernetes.io/elb.autocreate"
INNER_AUTOCREATE = re.compile(r'"type"\s*:\s*"inner"')


@dataclass(frozen=True, slots=True)
class ServiceExposure:
    name: str
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalName | Headless
    internal: bool  # LoadBalancer only: private to the VPC
    http: bool  # every port looks like HTTP(S): could sit behind an Ingress
    ports: str


@dataclass(frozen=True, slots=True)
class IngressExposure:
    name: str
    hosts: tuple[str, ...]
    tls: bool  # every host is covered by spec.tls
    ingress_class: str


@dataclass(slots=True)
class NamespaceExposure:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    services: list[ServiceExposure] = field(default_factory=list)
    ingresses: list[IngressExposure] = field(default_factory=list)
    limits: list[LimitStatus] = field(default_factory=list)

    def count(self, service_type: str, internal: bool | None = None) -> int:
        return sum(
            1
            for s in self.services
            if s.type == service_type and (internal is None or s.internal == internal)
        )

    @property
    def loadbalancers(self) -> int:
        return self.count("LoadBalancer")

    @property
    def http_loadbalancers(self) -> int:
        return sum(1 for s in self.services if s.type == "LoadBalancer" and s.http)

    def monthly_cost(self, cost_per_lb: float) -> float:
        return self.loadbalancers * cost_per_lb

    def saving(self, cost_per_lb: float) -> float:
        return max(0, self.http_loadbalancers - 1) * cost_per_lb


def exposure(report: ScanReport, objects: Iterable[Mapping[str, Any]]) -> list[NamespaceExposure]:
    """Per namespace (sorted), its Services, Ingresses and limit statuses."""
    spaces = {
        name: NamespaceExposure(name, (ns.get("metadata") or {}).get("labels") or {})
        for name, ns in report.namespaces.items()
    }
    for obj in objects:
        kind = obj.get("kind")
        metadata = obj.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        if kind not in ("Service", "Ingress"):
            continue
        space = spaces.setdefault(namespace, NamespaceExposure(namespace))
        if kind == "Service":
            space.services.append(service_exposure(obj))
        else:
            space.ingresses.append(ingress_exposure(obj))
    for status in report.limits:
        if status.kind == "Service":
            spaces.setdefault(status.namespace, NamespaceExposure(status.namespace))
            spaces[status.namespace].limits.append(status)
    return [spaces[name] for name in sorted(spaces)]


def service_exposure(obj: Mapping[str, Any]) -> ServiceExposure:
    spec = obj.get("spec") or {}
    service_type = str(spec.get("type") or "ClusterIP")
    if service_type == "ClusterIP" and spec.get("clusterIP") == "None":
        service_type = "Headless"
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, Mapping)]
    return ServiceExposure(
        name=str((obj.get("metadata") or {}).get("name") or ""),
        type=service_type,
        internal=service_type == "LoadBalancer" and is_internal(annotations),
        http=bool(ports) and all(_is_http(p) for p in ports),
        ports=", ".join(_port_text(p) for p in ports),
    )


def is_internal(annotations: Mapping[str, Any]) -> bool:
    """True when any cloud's internal-LB annotation asks for a private load balancer."""
    if str(annotations.get(PUBLIC_SCHEME[0], "")).lower() == PUBLIC_SCHEME[1]:
        return False
    # Tencent (TKE) makes a load balancer internal with the subnet it goes in, Huawei (CCE)
    # with {"type": "inner"} in its autocreate JSON: per-cluster values, so not flavours.
    if str(annotations.get(TENCENT_INTERNAL_SUBNET) or "").strip():
        return True
    if INNER_AUTOCREATE.search(str(annotations.get(HUAWEI_AUTOCREATE) or "")):
        return True
    for key, value in INTERNAL_LB_FLAVOURS.values():
        given = annotations.get(key)
        if given is None:
            continue
        given = str(given).lower()
        # The legacy AWS annotation also accepts a CIDR ("0.0.0.0/0") meaning internal.
        if given == value.lower() or (key.endswith("-internal") and "/" in given):
            return True
    return False


def ingress_exposure(obj: Mapping[str, Any]) -> IngressExposure:
    spec = obj.get("spec") or {}
    hosts = tuple(
        str(rule.get("host"))
        for rule in spec.get("rules") or []
        if isinstance(rule, Mapping) and rule.get("host")
    )
    covered = {
        str(host)
        for entry in spec.get("tls") or []
        if isinstance(entry, Mapping)
        for host in entry.get("hosts") or []
    }
    has_tls = bool(spec.get("tls")) and all(h in covered for h in hosts)
    return IngressExposure(
        name=str((obj.get("metadata") or {}).get("name") or ""),
        hosts=hosts,
        tls=has_tls,
        ingress_class=str(spec.get("ingressClassName") or ""),
    )


def _is_http(port: Mapping[str, Any]) -> bool:
    if str(port.get("protocol") or "TCP").upper() != "TCP":
        return False
    name = str(port.get("name") or "").lower()
    protocol = str(port.get("appProtocol") or "").lower()
    if name.startswith(("http", "web")) or protocol.startswith(("http", "kubernetes.io/h2c")):
        return True
    return port.get("port") in HTTP_PORTS


def _port_text(port: Mapping[str, Any]) -> str:
    text = str(port.get("port", "?"))
    if port.get("nodePort"):
        text += f":{port['nodePort']}"
    protocol = str(port.get("protocol") or "TCP")
    return text if protocol == "TCP" else f"{text}/{protocol}"
