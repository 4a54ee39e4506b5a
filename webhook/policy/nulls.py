"""A null field is an absent field, as in Kubernetes.

The API server decodes a request into typed objects, where ``annotations: null`` and no
``annotations`` at all are the same nil map, so CEL in ValidatingAdmissionPolicy sees the
field as absent: ``has()`` is false and reading it is an error. YAML manifests, cluster-state
files and AdmissionReviews sent by other tools can carry explicit nulls; every value a policy
reads goes through here so that all paths judge them the same.
"""

from __future__ import annotations

from typing import Any


def without_nulls(value: Any) -> Any:
    """``value`` with every null map entry dropped, at any depth; unchanged values are shared.

    Nothing is copied when there is no null (the common case), so this costs one walk of
    what a policy reads, which CEL's conversion walks anyway.
    """
    kind = type(value)
    if kind is dict:
        cleaned: dict[str, Any] | None = None
        for key, item in value.items():
            if item is None:
                if cleaned is None:
                    cleaned = dict(value)
                del cleaned[key]
                continue
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                new = without_nulls(item)
                if new is not item:
                    if cleaned is None:
                        cleaned = dict(value)
                    cleaned[key] = new
        return value if cleaned is None else cleaned
    if kind is list:
        replaced: list[Any] | None = None
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                new = without_nulls(item)
                if new is not item:
                    if replaced is None:
                        replaced = list(value)
                    replaced[index] = new
        return value if replaced is None else replaced
    return value
