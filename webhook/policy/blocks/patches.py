"""JSONPatch construction for mutations: escaping, absent-only annotations, raw patches."""

from __future__ import annotations

import copy
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
    # ``type() is dict`` first: the ABC's isinstance is slow, and parsed JSON is dicts.
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise PatchError("the object has no metadata")
    current = metadata.get("annotations")
    if type(current) is not dict and not isinstance(current, Mapping):
        current = None  # absent, null or malformed: the patch sets the whole map
    missing = {k: v for k, v in annotations.items() if not (current and k in current)}
    if not missing:
        return obj, []
    if current is None:
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
    """Apply a policy's raw JSONPatch to a copy; raise PatchError naming what failed.

    The error names the operation and its path (the policy's) and the kind of failure,
    never jsonpatch's own message: that quotes the document (the object's values).
    """
    ops = [dict(op) for op in operations]
    patched: Any = copy.deepcopy(dict(obj))
    for index, op in enumerate(ops):
        try:
            patched = jsonpatch.apply_patch(patched, [op], in_place=True)
        except Exception as error:
            raise PatchError(
                f"patch operation {index} ({op.get('op')} {op.get('path')}) does not apply: "
                f"{_PATCH_FAILURES.get(type(error).__name__, type(error).__name__)}"
            ) from None
    result: Mapping[str, Any] = patched
    return result


_PATCH_FAILURES = {
    "JsonPatchConflict": "it conflicts with the object (a missing parent, or an index out "
    "of range)",
    "JsonPatchTestFailed": "its test does not hold",
    "JsonPointerException": "its path is not in the object",
    "InvalidJsonPatch": "it is not a valid JSONPatch operation",
}
