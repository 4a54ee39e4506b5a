"""Hypothesis strategies for what the API server (or a careless manifest) can hand us:
Namespaces, Services and Ingresses with nulls and odd types where users put them.

Each field is drawn from a list of variants written out here (absent, null, wrong types,
the values policies care about), so one case costs a handful of draws: generating 10,000
cases then takes seconds, and every variant is still combined with every other.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

ABSENT: Any = object()  # a field left out, as opposed to an explicit null
ODD = [None, 5, 2.5, True, "text", [], ["a"], {}]  # the wrong type, as a typo sends it

NAMESPACE_NAMES = ["payments", "shop", "sandbox"]
NAMESPACE_LABELS = [
    ABSENT, *ODD,
    {"environment": "production"}, {"environment": "prod"}, {"environment": "development"},
    {"edgewarden.dev/public-loadbalancers": "allowed"},
    {"environment": "production", "edgewarden.dev/public-loadbalancers": "allowed"},
    {"team": "a", "environment": 5},
]
NAMESPACE_ANNOTATIONS = [
    ABSENT, *ODD,
    *({"edgewarden.dev/max-loadbalancers": v}
      for v in ["0", "1", "3", "x", "-1", "99999999999", "", 3, None]),
    {"owner": "team-a"},
]
NAMES = ["web", "api", "lb-0", "web", "api", ABSENT, None, 7]
LABELS = [ABSENT, *ODD, {"app": "web"}, {"app": "web", "team": "a"}]
ANNOTATIONS = [
    ABSENT, *ODD,
    {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"},
    {"networking.gke.io/load-balancer-type": "Internal"},
    {"service.beta.kubernetes.io/aws-load-balancer-internal": 5},
    {"kubernetes.io/ingress.class": "nginx"}, {"kubernetes.io/ingress.class": None},
    {"owner": "team-a"},
]
SERVICE_TYPES = [ABSENT, *ODD, "ClusterIP", "NodePort", "LoadBalancer", "LoadBalancer",
                 "ExternalName"]
EXTERNAL_IPS = [ABSENT, *ODD, ["1.2.3.4"], ["1.2.3.4", "5.6.7.8"], [None], [5]]
HOSTS = [ABSENT, None, 5, "shop.example.com", "api.example.com", "*.example.com", ""]
TLS_HOSTS = [ABSENT, *ODD, ["shop.example.com"], ["*.example.com"],
             ["shop.example.com", "api.example.com"], [None]]
CLASS_NAMES = [ABSENT, None, 5, "nginx", ""]
SPEC_SHAPES = ["spec", "spec", "spec", "spec", *ODD]  # mostly a real spec


def _pick(options: list[Any]) -> st.SearchStrategy[Any]:
    # Deep copies: a variant is never shared between two cases (nothing may leak).
    return st.sampled_from(range(len(options))).map(
        lambda i: options[i] if options[i] is ABSENT else copy.deepcopy(options[i])
    )


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not ABSENT}


@st.composite
def namespaces(draw: st.DrawFn) -> dict[str, Any]:
    metadata = _present({
        "name": draw(st.sampled_from(NAMESPACE_NAMES)),
        "labels": draw(_pick(NAMESPACE_LABELS)),
        "annotations": draw(_pick(NAMESPACE_ANNOTATIONS)),
    })
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


@st.composite
def _metadata(draw: st.DrawFn, namespace: str) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(_pick(ODD))
    return _present({
        "name": draw(_pick(NAMES)),
        "namespace": namespace,
        "labels": draw(_pick(LABELS)),
        "annotations": draw(_pick(ANNOTATIONS)),
    })


@st.composite
def services(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    shape = draw(_pick(SPEC_SHAPES))
    spec = shape if shape != "spec" else _present({
        "type": draw(_pick(SERVICE_TYPES)),
        "externalIPs": draw(_pick(EXTERNAL_IPS)),
        "ports": [{"port": 80, "targetPort": 8080}],
    })
    return {"apiVersion": "v1", "kind": "Service", "metadata": draw(_metadata(namespace)),
            "spec": spec}


@st.composite
def ingresses(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    shape = draw(_pick(SPEC_SHAPES))
    if shape != "spec":
        spec = shape
    else:
        rules = [
            _present({"host": draw(_pick(HOSTS)), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}})
            for _ in range(draw(st.integers(0, 3)))
        ]
        tls = [_present({"hosts": draw(_pick(TLS_HOSTS)), "secretName": "tls"})
               for _ in range(draw(st.integers(0, 2)))]
        spec = _present({
            "ingressClassName": draw(_pick(CLASS_NAMES)),
            "rules": rules if draw(st.booleans()) else draw(_pick([ABSENT, *ODD])),
            "tls": tls if draw(st.booleans()) else draw(_pick([ABSENT, *ODD])),
        })
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": draw(_metadata(namespace)), "spec": spec}


@dataclass(frozen=True)
class Case:
    namespace: dict[str, Any]
    existing: tuple[dict[str, Any], ...]  # LoadBalancer Services already in the namespace
    operation: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None

    @property
    def namespace_name(self) -> str:
        return str(self.namespace["metadata"]["name"])


def _existing(namespace: str, count: int) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"lb-{i}", "namespace": namespace},
         "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
        for i in range(count)
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    namespace = draw(namespaces())
    name = namespace["metadata"]["name"]
    objects = services(name) if draw(st.integers(0, 2)) else ingresses(name)
    operation = draw(st.sampled_from(["CREATE", "CREATE", "UPDATE", "DELETE"]))
    new = draw(objects)
    old = draw(objects) if operation != "CREATE" else None
    existing = _existing(name, draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3])))
    if operation == "DELETE":
        return Case(namespace, existing, operation, None, old)
    return Case(namespace, existing, operation, new, old)
