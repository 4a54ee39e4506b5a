"""Kubernetes objects for tests, built from keyword arguments only.

A map left out (``labels=None``) is absent from the object, not empty: policies tell the two
apart (``has(object.metadata.labels)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Object = dict[str, Any]


def metadata(
    *,
    name: str,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = dict(labels)
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    return meta


def namespace(
    *,
    name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata(name=name, labels=labels, annotations=annotations),
    }


def service(
    *,
    name: str,
    namespace: str,
    type: str = "ClusterIP",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> Object:
    """A Service with one port (80 to 8080); ``spec`` adds fields (``externalIPs=[...]``)."""
    meta = metadata(name=name, namespace=namespace, labels=labels, annotations=annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": type, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }


def ingress(
    *,
    name: str,
    namespace: str,
    class_name: str | None = "nginx",
    host: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Object:
    """An Ingress with one rule for ``host`` (``NAME.example.com`` by default)."""
    spec: dict[str, Any] = {"rules": [{"host": host or f"{name}.example.com"}]}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    meta = metadata(name=name, namespace=namespace, labels=labels, annotations=annotations)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": spec,
    }
