"""Gateway API objects for tests, built from keyword arguments only (see objects.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .objects import Object, metadata

GATEWAY_API = "gateway.networking.k8s.io/v1"


def httproute(
    *,
    name: str,
    namespace: str,
    hostnames: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    gateway: str = "public",
    labels: Mapping[str, str] | None = None,
) -> Object:
    """An HTTPRoute attached to ``gateway``, for ``hostnames``, one rule matching ``paths``
    (PathPrefix) and sending them to the Service ``web``."""
    rule: dict[str, Any] = {"backendRefs": [{"name": "web", "port": 80}]}
    if paths is not None:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": p}} for p in paths]
    spec: dict[str, Any] = {"parentRefs": [{"name": gateway}], "rules": [rule]}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata(name=name, namespace=namespace, labels=labels),
        "spec": spec,
    }


def gateway(
    *,
    name: str,
    namespace: str,
    listeners: Sequence[Mapping[str, Any]] = ({"name": "http", "protocol": "HTTP",
                                                "port": 80},),
    class_name: str = "example",
) -> Object:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": metadata(name=name, namespace=namespace),
        "spec": {"gatewayClassName": class_name, "listeners": [dict(x) for x in listeners]},
    }
