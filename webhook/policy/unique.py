"""The ``unique`` block: keys (a host, a host and path) that one namespace holds alone.

A policy's ``unique.keys`` is CEL over ``object`` returning a list of strings (nested
lists are opened: one list per rule is fine). Every
object of the kinds the policy matches holds its keys; a CREATE, or an UPDATE that adds a
key, is refused when an object in *another* namespace already holds that key. Keys of
every matched kind share one key space: with ``kinds: [Ingress, HTTPRoute]`` an HTTPRoute
cannot take a host an Ingress elsewhere serves. Objects in the same namespace may share
keys (one team splitting a host over several routes), and an UPDATE keeping its own keys
is never refused, nor is a DELETE.

The engine asks the cluster view who holds a key (``ClusterView.key_holders``); the
backends keep that answer current for every registered :class:`UniqueIndex` (the watch
cache indexes key -> holders on every event; the in-memory cluster computes it). Existing
objects are indexed whatever the policy's selectors say: a host served from an excluded
namespace is still served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import cel

from webhook.policy.cel import EXTENSION_FUNCTIONS, CelEvaluationError, CelExpression
from webhook.policy.model import Policy
from webhook.policy.nulls import without_nulls
from webhook.policy.projection import Projection, merge, project, selected_paths


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


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list holding " + ", ".join(sorted({type(v).__name__ for v in value}))
    return type(value).__name__


class UniqueKeysError(Exception):
    """``unique.keys`` failed, or did not give a list of strings."""


@dataclass(frozen=True, slots=True)
class UniqueIndex:
    """The keys one unique policy indexes: a KeyIndex (webhook.policy.ports)."""

    key: str  # stable identity: equal keys index the same keys
    kinds: frozenset[str]
    expression: CelExpression
    # Only the fields the expression selects are converted to CEL (a microsecond a field).
    projection: Projection = None

    @classmethod
    def for_policy(cls, policy: Policy) -> UniqueIndex:
        assert policy.unique is not None
        kinds = ",".join(sorted(policy.match.kinds))
        key = f"{policy.name}/{kinds}:{policy.unique.keys.source}"
        selected = selected_paths(policy.unique.keys.source).get("object", [])
        return cls(key, policy.match.kinds, policy.unique.keys, merge(selected))

    def evaluate(self, obj: Mapping[str, Any]) -> frozenset[str]:
        """The keys ``obj`` holds; UniqueKeysError when the expression cannot say."""
        context = cel.Context()
        context.add_variable("object", without_nulls(project(obj, self.projection)))
        for function in self.expression.functions:  # join, split... (Python callbacks)
            context.add_function(function, EXTENSION_FUNCTIONS[function])
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
        return frozenset(keys)

    def keys_of(self, obj: Mapping[str, Any]) -> frozenset[str]:
        """The keys an existing object holds; one the expression cannot judge holds none."""
        try:
            return self.evaluate(obj)
        except Exception:  # an object no one foresaw must not take the cache down
            return frozenset()
