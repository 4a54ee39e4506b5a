"""How a Namespace looks to policies: every namespace carries its name label, as in Kubernetes.

The API server labels every Namespace ``kubernetes.io/metadata.name=<name>``; a namespace the
cluster state does not know (or an old dump without the label) is given it here, so a
``namespaceSelector`` on the name behaves the same in admission, ``check``, ``audit`` and
``quota``. This is the one place that rule is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.policy.model.objects import labels_of, metadata_of

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_labels(name: str, namespace: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The labels a namespaceSelector sees for namespace ``name`` (``namespace`` may be None)."""
    if namespace is None:
        return {NAMESPACE_NAME_LABEL: name} if name else {}
    labels = _labels(namespace)
    if NAMESPACE_NAME_LABEL in labels or not name:
        return labels
    return {**labels, NAMESPACE_NAME_LABEL: name}


def namespace_object(name: str, namespace: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The Namespace as CEL's ``namespaceObject`` sees it, name label included."""
    if namespace is None:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {NAMESPACE_NAME_LABEL: name} if name else {}},
        }
    labels = _labels(namespace)
    if NAMESPACE_NAME_LABEL in labels or not name:
        return namespace
    metadata = metadata_of(namespace)
    return {**namespace, "metadata": {**metadata, "labels": {**labels, NAMESPACE_NAME_LABEL: name}}}


def namespace_name(namespace: Mapping[str, Any]) -> str:
    name = metadata_of(namespace).get("name")
    return name if isinstance(name, str) else ""


def _labels(namespace: Mapping[str, Any]) -> Mapping[str, Any]:
    return labels_of(namespace)
