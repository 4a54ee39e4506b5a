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
from webhook.policy.load.reads import covers

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
# (its position in the record, after the mask), at a path.
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


# The top-level fields the cache ever holds of an object that is not a Namespace (the rest,
# status above all, is the controllers' business, not the policies').
KEPT_AT_TOP = ("metadata", "spec")


def named_fields(sub: Projection) -> dict[str, Projection] | None:
    """The fields a record holds one by one below a field ``sub`` projects; None when it
    holds the field as one value (kept whole, a presence stub, or a list projected below
    it)."""
    return None if sub is None or not sub or ELEMENTS in sub else sub


class Shape:
    """One kind's objects cut to ``projection`` (None: slimmed, but otherwise whole).

    A record holds exactly what ``project(slim(obj), projection)`` holds."""

    __slots__ = ("_leaf_count", "_name_at", "_namespace_at", "_plan", "_steps", "api_version",
                 "kind", "projection")

    def __init__(self, kind: str, api_version: str, projection: Projection) -> None:
        self.kind = kind
        self.api_version = api_version
        self.projection = projection
        # For each map: (key, True, its bit, its own plan, leaves below it); for each leaf:
        # (key, False, its position, its projection, how to treat its value).
        self._plan: list[tuple[Any, ...]] = []
        self._steps: list[_Step] = []
        self._leaf_count = 0
        self._name_at = self._namespace_at = 0  # where a record holds them (0: nowhere)
        if projection is not None:
            top = {k: v for k, v in projection.items() if k in KEPT_AT_TOP}
            self._plan = self._compile(top, (), [0])

    def _compile(self, node: dict[str, Projection], prefix: tuple[str, ...],
                 bits: list[int]) -> list[tuple[Any, ...]]:
        plan: list[tuple[Any, ...]] = []
        for key, sub in node.items():
            path = (*prefix, key)
            fields = named_fields(sub)
            if fields is None:
                # Kept whole, a presence stub, or a list or map projected below it.
                self._steps.append((False, path, self._leaf_count))
                treat = (_STRING_MAP if path in _STRING_MAPS
                         else _SHARED if path not in _UNIQUE_LEAVES else _COPIED)
                if path == ("metadata", "name"):
                    self._name_at = self._leaf_count + 1
                elif path == ("metadata", "namespace"):
                    self._namespace_at = self._leaf_count + 1
                plan.append((key, False, self._leaf_count, sub, treat))
                self._leaf_count += 1
            else:
                bit = bits[0]
                bits[0] += 1
                self._steps.append((True, path, bit))
                before = self._leaf_count
                children = self._compile(fields, path, bits)
                plan.append((key, True, 1 << bit, children, self._leaf_count - before))
        return plan

    def __repr__(self) -> str:
        return f"Shape({self.kind}, {self.projection!r})"

    def identity(self, record: Record, obj: Mapping[str, Any]) -> tuple[str, str]:
        """(namespace, name) of ``obj``, as ``record`` holds them where it does: the cache
        files the record under the very strings it holds."""
        if isinstance(record, tuple) and self._name_at and self._namespace_at:
            namespace, name = record[self._namespace_at], record[self._name_at]
            if type(namespace) is str and type(name) is str:
                return namespace, name
        metadata = obj.get("metadata") or {}
        return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")

    def positions(self, read: Projection) -> tuple[int, ...] | None:
        """Where in a record the fields ``read`` selects are: two records equal at these
        positions (and in their masks) give equal ``project(obj, read)``. None when the
        record cannot say (``read`` or the shape keeps whole objects, or the shape does not
        keep all of ``read``: a counter of a policy not loaded yet)."""
        if read is None or self.projection is None or not covers(self.projection, read):
            return None
        found: list[int] = []
        _positions(self._plan, {k: v for k, v in read.items() if k in KEPT_AT_TOP}, found)
        return tuple(found)

    # ---- in ----

    def record(self, obj: Mapping[str, Any]) -> Record:
        """``obj`` (as the API server sent it) cut to the shape."""
        if self.projection is None:
            return slim(self.kind, self.api_version, obj)
        values: list[Any] = [0]
        mask = _fill(obj, self._plan, values, 0)
        if mask is None:
            return self._projected(obj)  # not the layout: keep the projected dict
        values[0] = mask
        return tuple(values)

    def _projected(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        slimmed = slim(self.kind, self.api_version, obj)
        cut = project({k: v for k, v in slimmed.items() if k not in _CARRIED}, self.projection)
        return {"apiVersion": self.api_version, "kind": self.kind, **cut}

    # ---- out ----

    def materialize(self, record: Record) -> dict[str, Any]:
        """The object a record holds, with ``kind`` and ``apiVersion`` (a new dict; the
        values below it are shared with the record: callers must not change them)."""
        if isinstance(record, dict):
            return record
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
                    parent[path[-1]] = (dict(zip(value[::2], value[1::2], strict=True))
                                        if type(value) is tuple else value)
        return out


# How a leaf's value is held. Every value is copied out of the decoded page, so the page's
# objects all go when it does (a kept name among a page's garbage pins a whole memory
# pool: measured, 25 MiB over 100,000 Services); short strings many objects repeat are
# shared; labels and annotations are held as a flat tuple of keys and values (a third of
# the size of a small dict, and hashable: see KubeStore's counter memo).
_COPIED, _SHARED, _STRING_MAP = 0, 1, 2
_STRING_MAPS = frozenset({("metadata", "labels"), ("metadata", "annotations")})


def _positions(plan: list[tuple[Any, ...]], read: dict[str, Projection],
               found: list[int]) -> None:
    for key, is_map, position, sub, _ in plan:
        if key not in read:
            continue
        wanted = read[key]
        if not is_map:
            found.append(position + 1)  # the leaf holds all of it that is kept
        elif wanted is None or not wanted:
            _positions(sub, {entry[0]: None for entry in sub}, found)  # all below it
        else:
            _positions(sub, wanted, found)


def copied(value: Any) -> Any:
    """``value`` (JSON: dicts, lists, strings, numbers...) in objects of its own, so a kept
    object does not pin the memory of the page it was decoded with."""
    return _copy(value)


def _copy(value: Any) -> Any:
    """``value`` in objects of its own (JSON values: no tuples come from a decoder)."""
    kind = type(value)
    if kind is str:
        return value.encode().decode() if value else value
    if kind is dict:
        return {sys.intern(k): _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value  # numbers, booleans and None are small or shared


def _flat_map(value: dict[str, Any]) -> Any:
    """A string map as a flat tuple ``(key, value, key, value...)``, keys shared; another
    map (a value that is not a string) copied as it is."""
    if not all(type(v) is str for v in value.values()):
        return _copy({k: v for k, v in value.items() if k not in DROPPED_ANNOTATIONS})
    flat: list[str] = []
    for key, text in value.items():
        if key in DROPPED_ANNOTATIONS:
            continue
        flat.append(sys.intern(key))
        flat.append(text.encode().decode() if text else text)
    return tuple(flat)


def _fill(node: Mapping[str, Any], plan: list[tuple[Any, ...]], values: list[Any],
          mask: int) -> int | None:
    """Append the leaves of ``plan`` found in ``node`` to ``values``; the mask of the maps
    found, or None when ``node`` does not have the layout (a scalar where a map is)."""
    for key, is_map, position, sub, extra in plan:
        value = node.get(key, ABSENT)
        if is_map:
            if value is ABSENT:
                values.extend([ABSENT] * extra)
            elif type(value) is dict:
                found = _fill(value, sub, values, mask | position)
                if found is None:
                    return None
                mask = found
            else:
                return None
            continue
        if value is not ABSENT:
            if sub is not None:
                value = project(value, sub)
            if extra == _STRING_MAP and type(value) is dict:
                value = _flat_map(value)
            elif extra == _SHARED and type(value) is str and len(value) <= _INTERN_UP_TO:
                value = sys.intern(value)
            else:
                value = _copy(value)
        values.append(value)
    return mask
