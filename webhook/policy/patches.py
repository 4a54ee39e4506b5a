"""JSONPatch construction for mutations: escaping, absent-only annotations, raw patches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jsonpatch


class PatchError(ValueError):
    """A mutation's patch does not apply to the object."""


def escape_pointer_token(token: str) -> str:
    """RFC 6901: ``~`` becomes ``~0`` and ``/`` becomes ``~1`` (in that order)."""
    return token.replace("~", "~0").replace("/", "~1")


def add_absent_annotations(
    obj: dict[str, Any], annotations: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Add each annotation that ``obj`` does not have yet; return the JSONPatch, mutating ``obj``.

    When the object has no annotations map at all, one ``add`` creates the whole map: a
    patch to ``/metadata/annotations/<key>`` would fail against a missing parent.
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise PatchError("the object has no metadata")
    current = metadata.get("annotations")
    missing = {k: v for k, v in annotations.items() if not (current and k in current)}
    if not missing:
        return []
    if not isinstance(current, dict):
        metadata["annotations"] = dict(missing)
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(missing)}]
    ops = []
    for key, value in missing.items():
        current[key] = value
        ops.append(
            {
                "op": "add",
                "path": "/metadata/annotations/" + escape_pointer_token(key),
                "value": value,
            }
        )
    return ops


def apply_raw_patch(obj: dict[str, Any], operations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply a policy's raw JSONPatch; raise PatchError naming the operation that failed."""
    ops = [dict(op) for op in operations]
    try:
        return jsonpatch.apply_patch(obj, ops, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise PatchError(f"patch does not apply: {error}") from None
    except (KeyError, IndexError, TypeError) as error:
        raise PatchError(f"patch does not apply: {error!r}") from None
