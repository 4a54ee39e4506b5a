"""Who may take a key: a ``unique`` policy's verdict on the keys one object claims.

With ``match: Exact`` a key held by an object in another namespace is taken. With
``match: HostPath`` (hostpath.py), for each key the object claims:

1. Grants first. A host is reserved for the namespaces whose ``grantAnnotation`` names it
   most specifically (``pay.example.com`` before ``*.example.com``): another namespace is
   refused even if nothing serves the host yet. A wildcard is also refused when it covers a
   host reserved for another namespace (``*.example.com`` over ``pay.example.com``).
2. Then what is served. A held key that overlaps in another namespace is taken, except
   where the grant decides: when the common part of the two hosts is reserved for the
   claiming namespace and not for the holder, the grant wins. The holder (a squatter from
   before the grant) is not evicted - the webhook judges admissions, it deletes nothing - and
   keeps serving until removed; the claiming namespace is admitted with a warning naming it,
   and ``edgewarden audit`` reports the squatter.

The verdict is plain data; the engine records it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field

from webhook.policy.blocks.keys import Holder, UniqueIndex
from webhook.policy.model.hostpath import (
    REGEX_NOTE,
    PathKind,
    Place,
    covers,
    narrower,
    parse_place,
    specificity,
)
from webhook.policy.model.key_table import KeyMatch
from webhook.policy.model.kinds import NAMESPACE
from webhook.policy.model.ports import ClusterView

_SHOWN = 3  # holders named per key; the rest are counted


@dataclass(slots=True)
class Verdict:
    """What the keys of one admission run into."""

    conflicts: list[str] = field(default_factory=list)  # one line per refused key
    warnings: list[str] = field(default_factory=list)  # squatters the grant overrides
    regex: bool = False  # a regular expression took part in a conflict

    def detail(self) -> str:
        lines = "; ".join(self.conflicts)
        return f"{lines}; {REGEX_NOTE}" if self.regex else lines


def judge(
    index: UniqueIndex, keys: Iterable[str], namespace: str, cluster: ClusterView
) -> Verdict:
    """The verdict on ``keys`` claimed by an object in ``namespace``."""
    verdict = Verdict()
    for key in sorted(keys):
        found = cluster.key_holders(index, key)
        if index.match is KeyMatch.EXACT:
            others = sorted(Holder(*h) for h in found.get(key, ()) if h[1] != namespace)
            if others:
                verdict.conflicts.append(f"{key} is held by {_named(others)}")
            continue
        _judge_place(index, parse_place(key), found, namespace, verdict)
    return verdict


def _judge_place(
    index: UniqueIndex,
    place: Place,
    found: Mapping[str, Set[tuple[str, str, str]]],
    namespace: str,
    verdict: Verdict,
) -> None:
    if not found:
        return  # nothing served or granted overlaps it (most new keys): nothing to judge
    grants: dict[str, set[str]] = {}  # granted host -> namespaces it is granted to
    served: dict[str, tuple[Place, list[Holder]]] = {}  # held key -> place, other holders
    for held, holders in found.items():
        held_place = parse_place(held)
        for holder in holders:
            if holder[0] == NAMESPACE.key:
                grants.setdefault(held_place.host, set()).add(holder[1])
            elif holder[1] != namespace:
                served.setdefault(held, (held_place, []))[1].append(Holder(*holder))
    annotation = index.grant_annotation
    owners = _reserved_for(place.host, grants)
    if owners and namespace not in owners:
        verdict.conflicts.append(
            f"{place} is reserved for {_namespaces(owners)} by the {annotation} annotation")
        return
    # A wildcard also runs into the grants below it: their hosts would be its names too.
    for granted in sorted(host for host in grants if not covers(host, place.host)):
        inner = _reserved_for(granted, grants)
        if namespace not in inner:
            verdict.conflicts.append(
                f"{place} covers {granted}, reserved for {_namespaces(inner)} by the "
                f"{annotation} annotation")
            return
    for held in sorted(served):
        held_place, others = served[held]
        common = narrower(place.host, held_place.host)
        reserved = _reserved_for(common, grants)
        taken = sorted(h for h in others if not (reserved and namespace in reserved
                                                 and h.namespace not in reserved))
        for squatter in sorted(set(others) - set(taken)):
            verdict.warnings.append(
                f"{squatter} also serves {held_place}, although the {annotation} annotation "
                f"reserves {common} for namespace {namespace}: it keeps serving until it is "
                "removed (edgewarden audit reports it)")
        if not taken:
            continue
        if place.same(held_place):
            verdict.conflicts.append(f"{place} is held by {_named(taken)}")
        else:
            verdict.conflicts.append(f"{place} overlaps {held_place}, held by {_named(taken)}")
        if PathKind.REGEX in (place.kind, held_place.kind):
            verdict.regex = True


def _reserved_for(host: str, grants: Mapping[str, Set[str]]) -> frozenset[str]:
    """The namespaces ``host`` is reserved for: those of the most specific grant covering
    it (none: the host is not granted, so whoever serves it first holds it)."""
    covering = [granted for granted in grants if covers(granted, host)]
    if not covering:
        return frozenset()
    best = max(specificity(granted) for granted in covering)
    return frozenset(ns for granted in covering if specificity(granted) == best
                     for ns in grants[granted])


def _named(holders: list[Holder]) -> str:
    shown = ", ".join(map(str, holders[:_SHOWN]))
    more = len(holders) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _namespaces(names: Iterable[str]) -> str:
    ordered = sorted(names)
    noun = "namespace" if len(ordered) == 1 else "namespaces"
    return f"{noun} {', '.join(ordered)}"
