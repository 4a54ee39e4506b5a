"""What a policy set reads of existing objects, per kind: the fields a cluster cache keeps.

The watch cache holds every Service, Ingress and route of a cluster; most of each object
(status, managedFields, most of the spec) is read by nothing. What is read of an existing
object is known at load:

- every CEL expression of a policy (matchConditions, variables, validations and their
  messages, ``limit.where``, ``unique.keys``, a plug-in block's expressions) reads the
  ``object`` (and ``oldObject``) fields that webhook/policy/cel/projection.py finds it
  selecting; a use it cannot follow (``object`` handed whole to a function) keeps the
  whole object;
- a raw JSON patch reads the paths it adds to, replaces, removes, tests, copies or moves
  (``add`` needs the parent to exist, the others the value itself): each is kept whole
  from the first list index on;
- Python code reads ``metadata``: names, namespaces and labels (selectors, exceptions),
  annotations (the annotation mutations, grants), ``uid`` and ``generateName`` (the
  reports): :data:`ALWAYS_KEPT` keeps those for every kind;
- a plug-in block may read anything in Python: its kinds are kept whole.

The continuous audit judges cached objects with every loaded policy (mutations included),
so the fields are the union over all policies matching the kind, not only the limits' and
unique keys'. Namespaces are not projected here (the caller keeps them whole): CEL's
``namespaceObject``, selectors, grants and caps all read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.cel.expression import CelExpression
from webhook.policy.cel.projection import Projection, merge, paths_of, selected_paths
from webhook.policy.model.policy import Policy, RawPatch

# Read by Python code whatever the policies' expressions say (see the module docstring).
ALWAYS_KEPT: tuple[tuple[str, ...], ...] = (
    ("metadata", "name"),
    ("metadata", "generateName"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "labels"),
    ("metadata", "annotations"),
)
# The variables an existing object is bound to: ``object`` when it is judged (audit,
# counters, keys, the canary), ``oldObject`` when a replay judges an UPDATE of it.
_OBJECT_VARIABLES = ("object", "oldObject")
_WHOLE: tuple[str, ...] = ()


def expression_paths(expression: CelExpression) -> list[tuple[str, ...]]:
    """The field paths of an existing object ``expression`` reads (``()``: all of it)."""
    if expression.syntax is not None:
        found = paths_of(expression.syntax)
    else:
        found = selected_paths(expression.analysed_source or expression.source)
    return [path for variable in _OBJECT_VARIABLES for path in found.get(variable, [])]


def patch_paths(operations: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """The paths a raw JSON patch reads: each op's ``path`` and ``from``, up to the first
    list index (an index or ``-`` keeps the whole list: the patch counts its elements)."""
    paths: list[tuple[str, ...]] = []
    for operation in operations:
        for pointer in (operation.get("path"), operation.get("from")):
            if not isinstance(pointer, str):
                continue
            segments: list[str] = []
            for raw in pointer.split("/")[1:]:
                segment = raw.replace("~1", "/").replace("~0", "~")
                if segment == "-" or segment.isdigit():
                    break
                segments.append(segment)
            paths.append(tuple(segments))
    return paths


def policy_paths(policy: Policy) -> list[tuple[str, ...]]:
    """Every path of an existing object of its kinds that ``policy`` reads."""
    if policy.blocks:
        return [_WHOLE]  # a plug-in block's Python code may read anything
    paths: list[tuple[str, ...]] = []
    for expression in policy.expressions():
        paths.extend(expression_paths(expression))
    for mutation in policy.mutations:
        if isinstance(mutation, RawPatch):
            paths.extend(patch_paths(mutation.operations))
    return paths


@dataclass(frozen=True)
class FieldReads:
    """Per kind key: the projection of a whole object that keeps every field read (None:
    the whole object). A kind no policy matches is not named."""

    kinds: Mapping[str, Projection] = field(default_factory=dict)

    def of(self, kind: str) -> Projection:
        """The projection for ``kind``; a kind not named keeps the metadata read in Python."""
        if kind in self.kinds:
            return self.kinds[kind]
        return merge(ALWAYS_KEPT)


def fields_read(policies: Iterable[Policy]) -> FieldReads:
    """What ``policies`` read of existing objects, per kind they match."""
    paths: dict[str, list[tuple[str, ...]]] = {}
    for policy in policies:
        read = policy_paths(policy)
        for kind in policy.match.kinds:
            paths.setdefault(kind, list(ALWAYS_KEPT)).extend(read)
    return FieldReads({kind: merge(found) for kind, found in sorted(paths.items())})


def covers(held: Projection, needed: Projection) -> bool:
    """True when objects cut to ``held`` keep everything ``needed`` keeps."""
    if held is None:
        return True
    if needed is None:
        return False
    # Key by key; a projection may keep more than it names (a map under ELEMENTS is
    # kept whole), so this can answer False where objects would do: a needless re-sync.
    return all(key in held and covers(held[key], sub) for key, sub in needed.items())
