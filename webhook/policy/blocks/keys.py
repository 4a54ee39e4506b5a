"""Keys (a host, a host and path) that one namespace holds alone: what the ``unique``
block (unique.py) indexes and compares.

A policy's ``unique.keys`` is CEL over ``object`` returning a list of strings (nested
lists are opened: one list per rule is fine). Every
object of the kinds the policy matches holds its keys; a CREATE, or an UPDATE that adds a
key, is refused when an object in *another* namespace already holds a key it runs into.
Keys of every matched kind share one key space: with ``kinds: [Ingress, HTTPRoute]`` an
HTTPRoute cannot take a host an Ingress elsewhere serves. Objects in the same namespace may
share keys (one team splitting a host over several routes), and an UPDATE keeping its own
keys is never refused, nor is a DELETE.

``match`` says what "runs into" means: ``Exact`` (the default), the same string;
``HostPath``, an overlapping host and path (webhook/policy/model/hostpath.py), and then
``grantAnnotation`` names the namespace annotation whose hosts are reserved for that
namespace: its Namespace object holds them, as a route holds its keys (ownership.py says
who wins).

The engine asks the cluster view which held keys a key runs into
(``ClusterView.key_holders``); the backends keep one KeyTable (key_table.py) for every
registered :class:`UniqueIndex` (the watch cache updates it on every event; the in-memory
cluster builds it on first use). Existing objects are indexed whatever the policy's
selectors say: a host served from an excluded namespace is still served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from webhook.policy.cel.expression import CelEvaluationError, CelExpression
from webhook.policy.cel.projection import ELEMENTS, Projection, merge, project, selected_paths
from webhook.policy.model.hostpath import PlaceError, parse_host, parse_place
from webhook.policy.model.key_table import KeyMatch
from webhook.policy.model.kinds import NAMESPACE, key_of_object
from webhook.policy.model.nulls import holds_null, without_nulls
from webhook.policy.model.policy import Policy


class Holder(NamedTuple):
    """An object holding a key: its kind's key, namespace and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _collect(value: list[Any] | tuple[Any, ...], into: set[str]) -> bool:
    """Add the strings of ``value`` to ``into``, opening nested lists (CEL has no flatMap,
    so one key per rule and path is naturally a list of lists); False on anything else."""
    for item in value:
        if isinstance(item, str):
            into.add(item)
        elif not isinstance(item, list | tuple) or not _collect(item, into):
            return False
    return True


def _clean_along(value: Any, projection: Projection) -> bool:
    """Whether ``without_nulls(project(value, projection))`` would read the same as
    ``value`` wherever the projection keeps: no null map entry there, and only plain dicts
    and lists on the way (project rebuilds any other Mapping as a dict). Mirrors
    projection.project step by step; False whenever unsure (the caller then copies)."""
    pending: list[tuple[Any, Projection]] = [(value, projection)]
    while pending:
        current, kept = pending.pop()
        kind = type(current)
        if kind is not dict and kind is not list:
            if kind in _PLAIN:
                continue
            return False  # another Mapping or sequence: leave it to project
        if kept is None or (kind is dict and ELEMENTS in kept):
            if holds_null(current):  # kept whole: without_nulls walks all of it
                return False
            continue
        if kind is dict:
            for key, sub in kept.items():
                if key in current:
                    child = current[key]
                    if child is None:
                        return False
                    pending.append((child, sub))
        elif ELEMENTS in kept and len(kept) == 1:
            element = kept[ELEMENTS]
            pending.extend((item, element) for item in current)
        elif holds_null(current):  # project keeps this list whole
            return False
    return True


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list holding " + ", ".join(sorted({type(v).__name__ for v in value}))
    return type(value).__name__


class UniqueKeysError(Exception):
    """``unique.keys`` failed, or did not give a list of strings."""


@dataclass(frozen=True, slots=True)
class UniqueIndex:
    """The keys one unique policy indexes: a KeyIndex (webhook.policy.model.ports)."""

    key: str  # stable identity: equal keys index the same keys
    kinds: frozenset[str]  # the matched kinds, and Namespace when namespaces hold grants
    expression: CelExpression
    # Only the fields the expression selects are converted to CEL (a microsecond a field).
    projection: Projection = None
    match: KeyMatch = KeyMatch.EXACT
    grant_annotation: str | None = None

    @classmethod
    def for_policy(cls, policy: Policy) -> UniqueIndex:
        unique = policy.unique
        assert unique is not None
        kinds = ",".join(sorted(policy.match.kinds))
        grants = unique.grant_annotation
        key = f"{policy.name}/{kinds}/{unique.match}/{grants or ''}:{unique.keys.source}"
        selected = selected_paths(unique.keys.source).get("object", [])
        holding = policy.match.kinds | ({NAMESPACE.key} if grants else set())
        return cls(key, frozenset(holding), unique.keys, merge(selected), unique.match, grants)

    def evaluate(self, obj: Mapping[str, Any], *, null_free: bool = False) -> frozenset[str]:
        """The keys ``obj`` holds; UniqueKeysError when the expression cannot say.
        ``null_free``: ``obj`` is a plain JSON document known to hold no null (an admission
        whose body said so: AdmissionRequest.null_free)."""
        # The compiled expression reads only the projected fields, so when those hold no
        # null the object itself reads the same as its null-free projection: no copy.
        if null_free or _clean_along(obj, self.projection):
            context = {"object": obj}
        else:
            context = {"object": without_nulls(project(obj, self.projection))}
        try:
            value = self.expression.evaluate(context)
        except CelEvaluationError as error:
            raise UniqueKeysError(f"unique.keys `{self.expression.source}` failed: {error}") \
                from None
        keys: set[str] = set()
        if not isinstance(value, list | tuple) or not _collect(value, keys):
            raise UniqueKeysError(
                f"unique.keys `{self.expression.source}` must give a list of strings, "
                f"not {_describe(value)}"
            )
        if self.match is KeyMatch.HOST_PATH:
            for key in keys:
                try:
                    parse_place(key)
                except PlaceError as unplaced:
                    raise UniqueKeysError(
                        f"unique.keys `{self.expression.source}` gave a key that is not a "
                        f"HostPath key: {unplaced}"
                    ) from None
        return frozenset(keys)

    def keys_of(self, obj: Mapping[str, Any]) -> frozenset[str]:
        """The keys an existing object holds (a Namespace: the hosts granted to it); one
        the expression cannot judge holds none."""
        try:
            if self.grant_annotation is not None and key_of_object(obj) == NAMESPACE.key:
                return grants_of(obj, self.grant_annotation)
            return self.evaluate(obj)
        except Exception:  # an object no one foresaw must not take the cache down
            return frozenset()


def grants_of(namespace: Mapping[str, Any], annotation: str) -> frozenset[str]:
    """The hosts a Namespace's ``annotation`` grants it, as whole-host keys.

    Comma-separated, spaces ignored, case-insensitive, as the shipped host policies read
    it: ``shop.example.com`` or ``*.shop.example.com``. ``*`` alone (any host) lets the
    namespace serve anything but reserves nothing, and an entry that is not a host
    reserves nothing either.
    """
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(annotation)
    if not isinstance(value, str):
        return frozenset()
    hosts: set[str] = set()
    for entry in value.split(","):
        try:
            hosts.add(parse_host(entry.replace(" ", "")))
        except PlaceError:
            continue
    return frozenset(hosts)
