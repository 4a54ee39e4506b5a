"""Reading an object's metadata whatever shape it arrives in.

The API server only sends well-formed objects, but a manifest, a cluster-state file or a
client calling the webhook directly can send ``metadata: 5`` or ``labels: [..]``. Policies
then see no labels (and their expressions fail as their failurePolicy says); nothing here
raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EMPTY: Mapping[str, Any] = {}


def metadata_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    return metadata if isinstance(metadata, Mapping) else _EMPTY


def labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The object's labels as a selector reads them ({} when absent or not a map)."""
    labels = metadata_of(obj).get("labels")
    return labels if isinstance(labels, Mapping) else _EMPTY


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The annotations map, or None when absent, null or not a map."""
    annotations = metadata_of(obj).get("annotations")
    return annotations if isinstance(annotations, Mapping) else None
