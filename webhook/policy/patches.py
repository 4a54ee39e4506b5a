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
    obj: Mapping[str, Any], annotations: Mapping[str, str]
) -> tuple[Mapping[str, Any], list[dict[str, Any]]]:
    """Add each annotation ``obj`` lacks: the new object (copied on write) and the JSONPatch.

    ``obj`` itself is never changed: only the path to the annotations is copied, which keeps
    a mutation cheap however large the object is. When the object has no annotations map,
    one ``add`` creates the whole map: a patch to ``/metadata/annotations/<key>`` would fail
    against a missing parent.
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise PatchError("the object has no metadata")
    current = metadata.get("annotations")
    if not isinstance(current, Mapping):
        current = None  # absent, null or malformed: the patch sets the whole map
    missing = {k: v for k, v in annotations.items() if not (current and k in current)}
    if not missing:
        return obj, []
    if not isinstance(current, Mapping):
        ops = [{"op": "add", "path": "/metadata/annotations", "value": dict(missing)}]
        merged = dict(missing)
    else:
        ops = [
            {"op": "add", "path": "/metadata/annotations/" + escape_pointer_token(k), "value": v}
            for k, v in missing.items()
        ]
        merged = {**current, **missing}
    return {**obj, "metadata": {**metadata, "annotations": merged}}, ops


def apply_raw_patch(
    obj: Mapping[str, Any], operations: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any]:
    """Apply a policy's raw JSONPatch to a copy; raise PatchError naming what failed."""
    ops = [dict(op) for op in operations]
    try:
        patched: Mapping[str, Any] = jsonpatch.apply_patch(obj, ops, in_place=False)
        return patched
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise PatchError(f"patch does not apply: {error}") from None
    except (KeyError, IndexError, TypeError) as error:
        raise PatchError(f"patch does not apply: {error!r}") from None
