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
    """``value`` with every null map entry dropped, at any depth.

    Nothing is copied when there is no null (the common case), so this costs one walk of
    what a policy reads, which CEL's conversion walks anyway. Both walks are iterative: an
    object may be nested as deep as the JSON parser allows, deeper than Python recursion.
    """
    kind = type(value)
    if (kind is not dict and kind is not list) or not holds_null(value):
        return value
    return _copy_without_nulls(value)


def holds_null(value: dict[str, Any] | list[Any]) -> bool:
    """Whether a null map entry sits anywhere in ``value`` (what without_nulls drops)."""
    pending: list[Any] = [value]
    while pending:
        current = pending.pop()
        items = current.values() if type(current) is dict else current
        for item in items:
            if item is None and type(current) is dict:
                return True
            if type(item) is dict or type(item) is list:
                pending.append(item)
    return False


def _copy_without_nulls(value: dict[str, Any] | list[Any]) -> Any:
    root: Any = {} if type(value) is dict else []
    pending: list[tuple[Any, Any]] = [(value, root)]
    while pending:
        source, target = pending.pop()
        pairs = source.items() if type(source) is dict else enumerate(source)
        for key, item in pairs:
            if item is None and type(source) is dict:
                continue
            if type(item) is dict or type(item) is list:
                copied: Any = {} if type(item) is dict else []
                pending.append((item, copied))
                item = copied
            if type(target) is dict:
                target[key] = item
            else:
                target.append(item)
    return root
