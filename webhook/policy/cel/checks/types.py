"""The light CEL types the load-time checks infer, and how schema nodes map to them.

Deliberately small: enough to know that ``object.spec.typ`` does not exist, that
``spec.ports`` is a list, or that a validation yields a string. Anything we cannot know
is ``dyn`` and never produces an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SchemaNode = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CelType:
    """``kind`` is one of dyn, bool, int, uint, double, string, bytes, null, timestamp,
    duration, type, optional, list, map, object.

    ``element`` is a list's element or a map's value type; ``schema`` an object's schema
    node (its ``properties``); ``where`` names the value for messages (``Service
    spec.ports``); ``bound`` is a list's maxItems, a map's maxProperties or a string's
    maxLength, when the schema says.
    """

    kind: str
    element: CelType | None = None
    schema: SchemaNode | None = field(default=None, compare=False, repr=False)
    where: str = ""
    bound: int | None = None
    root: str = ""  # what the value belongs to, for messages: "Service", "Namespace"

    def describe(self) -> str:
        if self.kind == "list" and self.element is not None and self.element.kind != "dyn":
            return f"list of {self.element.describe()}"
        return self.kind

    @property
    def known(self) -> bool:
        return self.kind != "dyn"


DYN = CelType("dyn")
BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null")
TIMESTAMP = CelType("timestamp")
DURATION = CelType("duration")
TYPE = CelType("type")
OPTIONAL = CelType("optional")


def list_of(element: CelType, bound: int | None = None, where: str = "") -> CelType:
    return CelType("list", element, where=where, bound=bound)


def map_of(value: CelType, bound: int | None = None, where: str = "") -> CelType:
    return CelType("map", value, where=where, bound=bound)


def join(first: CelType, second: CelType) -> CelType:
    """The type of a value that is one or the other (conditional branches, list items)."""
    if first.kind == "null":
        return second
    if second.kind == "null" or first == second:
        return first
    if first.kind != second.kind or first.kind == "object":
        return DYN if first.kind != second.kind or first.schema is not second.schema else first
    if first.kind in ("list", "map"):
        return CelType(first.kind, join(first.element or DYN, second.element or DYN))
    return CelType(first.kind)


def from_schema(node: SchemaNode, where: str, root: str = "") -> CelType:
    """The CEL type of values a (trimmed OpenAPI) schema node describes.

    Our values are JSON as the API server sends it, but types are Kubernetes' (what its
    checker sees): ``format: date-time`` is a timestamp,
    ``x-kubernetes-int-or-string`` is either (dyn), and a ``number`` may arrive as an int.
    """
    if node.get("x-kubernetes-int-or-string"):
        return CelType("dyn", where=where, root=root)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        if "properties" in node:
            return CelType("object", schema=node, where=where, root=root)
        extra = node.get("additionalProperties")
        value = from_schema(extra, f"{where}[*]", root) if isinstance(extra, Mapping) else DYN
        return CelType("map", value, where=where, bound=node.get("maxProperties"), root=root)
    if kind == "array":
        items = node.get("items")
        element = from_schema(items, f"{where}[]", root) if isinstance(items, Mapping) else DYN
        return CelType("list", element, where=where, bound=node.get("maxItems"), root=root)
    if kind == "string" and node.get("format") == "date-time":
        # A timestamp in Kubernetes' CEL (the API server converts it); edgewarden evaluates
        # the JSON string, so the checker warns on any read of it (checks/infer.py).
        return CelType("timestamp", where=where, root=root)
    simple = {"string": "string", "integer": "int", "boolean": "bool"}.get(str(kind))
    if simple is None:
        return CelType("dyn", where=where, root=root)
    return CelType(simple, where=where, bound=node.get("maxLength"), root=root)


def field_type(parent: CelType, name: str) -> CelType | None:
    """The type of field ``name`` of an object type, or None when the schema lacks it."""
    assert parent.schema is not None
    child = parent.schema.get("properties", {}).get(name)
    if child is None:
        return None
    return from_schema(child, f"{parent.where}.{name}" if parent.where else name, parent.root)


def field_names(parent: CelType) -> list[str]:
    assert parent.schema is not None
    return sorted(parent.schema.get("properties", {}))
