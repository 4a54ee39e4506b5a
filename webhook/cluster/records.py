"""Compact per-kind records: how the watch cache holds an object cut to what policies read.

A Service as the API server sends it is a few dozen dicts, lists and strings (1-3 KiB of
Python objects); the shipped policies read a handful of its fields. A :class:`Shape` is
one kind's projection (webhook/policy/load/reads.py says what it keeps) turned into a
fixed layout: a record is one tuple holding each kept leaf (a field kept whole, or a
list or map projected below it) in the projection's order, and one int saying which of
the maps on the way to them exist. Field names live once in the shape, not in every
object, and ``materialize`` gives the object back as the projection would have cut it
(the same keys, values and order), so what reads it cannot tell the difference.

An object whose fields do not fit the layout (a map where a list or scalar is expected:
only a malformed object) is held as its projected dict instead, so nothing is ever lost.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from webhook.policy.cel.projection import ELEMENTS, Projection, project

# Annotations that can be large and that no policy needs to read.
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# Leaves worth sharing between objects: short strings many objects repeat (a namespace,
# a Service type); names and uids are unique and stay as they come.
_UNIQUE_LEAVES = frozenset({("metadata", "name"), ("metadata", "uid"),
                            ("metadata", "generateName")})
_INTERN_UP_TO = 64
_CARRIED = ("apiVersion", "kind")


class _Absent:
    """A leaf the object does not have (None is a value: an explicit JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

Record = tuple[Any, ...] | dict[str, Any]
# One step of rebuilding an object: open a map (its bit in the record's mask) or set a leaf
# (its position in the record), at a path.
_Step = tuple[bool, tuple[str, ...], int]


def without_dropped_annotations(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without managedFields and the large annotations nothing reads."""
    kept = {k: v for k, v in metadata.items() if k != "managedFields"}
    annotations = kept.get("annotations")
    if isinstance(annotations, dict) and any(a in annotations for a in DROPPED_ANNOTATIONS):
        kept["annotations"] = {k: v for k, v in annotations.items()
                               if k not in DROPPED_ANNOTATIONS}
    return kept


def slim(kind: str, api_version: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object whole but for managedFields, the large annotations and (but for a
    Namespace) status; ``kind``/``apiVersion`` set (LIST items arrive without them)."""
    slimmed: dict[str, Any] = {
        "apiVersion": api_version, "kind": kind,
        "metadata": without_dropped_annotations(obj.get("metadata") or {}),
    }
    if kind == "Namespace":
        if "status" in obj:
            slimmed["status"] = obj["status"]
    elif "spec" in obj:
        slimmed["spec"] = obj["spec"]
    return slimmed


class Shape:
    """One kind's objects cut to ``projection`` (None: slimmed, but otherwise whole)."""

    __slots__ = ("_leaves", "_maps", "_steps", "api_version", "kind", "projection")

    def __init__(self, kind: str, api_version: str, projection: Projection) -> None:
        self.kind = kind
        self.api_version = api_version
        self.projection = projection
        self._leaves: list[tuple[tuple[str, ...], Projection]] = []
        self._maps: list[tuple[str, ...]] = []
        self._steps: list[_Step] = []
        if projection is not None:
            self._walk(projection, ())

    def _walk(self, node: dict[str, Projection], prefix: tuple[str, ...]) -> None:
        for key, sub in node.items():
            if not prefix and key in _CARRIED:
                continue  # the same for every object of the kind: set on materializing
            path = (*prefix, key)
            if sub is None or not sub or ELEMENTS in sub:
                # Kept whole, a presence stub, or a list or map projected below it.
                self._steps.append((False, path, len(self._leaves)))
                self._leaves.append((path, sub))
            else:
                self._steps.append((True, path, len(self._maps)))
                self._maps.append(path)
                self._walk(sub, path)

    def __repr__(self) -> str:
        return f"Shape({self.kind}, {self.projection!r})"

    # ---- in ----

    def record(self, obj: Mapping[str, Any]) -> Record:
        """``obj`` (as the API server sent it) cut to the shape."""
        if self.projection is None:
            return slim(self.kind, self.api_version, obj)
        mask = 0
        for bit, path in enumerate(self._maps):
            found = _at(obj, path)
            if isinstance(found, dict):
                mask |= 1 << bit
            elif found is not ABSENT:
                return self._projected(obj)  # not the layout: keep the projected dict
        values: list[Any] = [mask]
        for path, sub in self._leaves:
            parent = _at(obj, path[:-1])
            value = parent.get(path[-1], ABSENT) if isinstance(parent, dict) else ABSENT
            if value is not ABSENT:
                if sub is not None:
                    value = project(value, sub)
                if path == ("metadata", "annotations") and isinstance(value, dict):
                    value = without_dropped_annotations({"annotations": value})["annotations"]
                elif type(value) is str and len(value) <= _INTERN_UP_TO \
                        and path not in _UNIQUE_LEAVES:
                    value = sys.intern(value)
            values.append(value)
        return tuple(values)

    def _projected(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        cut = project({k: v for k, v in obj.items() if k not in _CARRIED}, self.projection)
        if isinstance(cut.get("metadata"), dict):
            cut["metadata"] = without_dropped_annotations(cut["metadata"])
        return {"apiVersion": self.api_version, "kind": self.kind, **cut}

    # ---- out ----

    def materialize(self, record: Record) -> dict[str, Any]:
        """The object a record holds, with ``kind`` and ``apiVersion`` (a new dict; the
        values below it are shared with the record: callers must not change them)."""
        if type(record) is dict:
            return record
        assert isinstance(record, tuple)
        out: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind}
        mask = record[0]
        opened: dict[tuple[str, ...], dict[str, Any]] = {(): out}
        for is_map, path, position in self._steps:
            parent = opened.get(path[:-1])
            if parent is None:
                continue  # a map on the way is absent: so is everything below it
            if is_map:
                if mask >> position & 1:
                    opened[path] = parent[path[-1]] = {}
            else:
                value = record[position + 1]
                if value is not ABSENT:
                    parent[path[-1]] = value
        return out

    def name_of(self, record: Record) -> tuple[str, str]:
        """(namespace, name) of a record."""
        metadata = self.materialize(record).get("metadata") or {}
        return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return ABSENT if node is ABSENT else node
        node = node.get(key, ABSENT)
    return node
