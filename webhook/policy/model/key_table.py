"""The held keys of one ``unique`` index, and which of them a new key runs into.

One table type serves the watch cache, the in-memory cluster and the reservations, so all
three apply the same rule (webhook/policy/model/hostpath.py). With ``match: Exact`` a key runs
into itself only; with ``match: HostPath`` it runs into every held key it overlaps, found
without a scan: held keys are indexed by host, and hosts by every domain above them, so a
lookup reads the key's own host, the wildcards above it and (for a wildcard) the hosts
below it, then compares paths among those hosts' keys alone.

Writers must be serialised by the caller. Readers need no lock: every value is a frozenset
that is replaced, never changed, and reads are single ``dict.get`` calls, so a read racing a
write sees each host's keys either before or after it.
"""

from __future__ import annotations

from collections.abc import Hashable
from enum import StrEnum
from typing import Generic, TypeVar

from webhook.policy.model.hostpath import (
    Place,
    PlaceError,
    base_of,
    covering_hosts,
    parents,
    parse_place,
    paths_overlap,
)

H = TypeVar("H", bound=Hashable)
_NO_KEYS: frozenset[str] = frozenset()


class KeyMatch(StrEnum):
    """How a ``unique`` policy's keys are compared (``unique.match``)."""

    EXACT = "Exact"  # as strings
    HOST_PATH = "HostPath"  # as hosts and paths that may overlap (hostpath.py)


class KeyTable(Generic[H]):
    """Keys -> holders, for one index; ``overlapping`` answers who a new key runs into."""

    def __init__(self, match: KeyMatch) -> None:
        self.match = match
        self._holders: dict[str, frozenset[H]] = {}
        self._held: dict[H, frozenset[str]] = {}
        # HostPath only: each held key parsed, held keys by host, hosts by each domain above
        self._places: dict[str, Place] = {}
        self._by_host: dict[str, frozenset[str]] = {}
        self._under: dict[str, frozenset[str]] = {}

    # ---- reads ----

    def holders(self, key: str) -> frozenset[H]:
        """Who holds exactly ``key``."""
        return self._holders.get(key, frozenset())

    def keys_of(self, holder: H) -> frozenset[str]:
        return self._held.get(holder, _NO_KEYS)

    def overlapping(self, key: str) -> dict[str, frozenset[H]]:
        """Every held key that ``key`` runs into (itself included), with its holders."""
        found: dict[str, frozenset[H]] = {}
        same = self._holders.get(key)
        if same:
            found[key] = same
        if self.match is KeyMatch.EXACT:
            return found
        try:
            place = parse_place(key)
        except PlaceError:
            return found  # a key no host can be read from runs into itself alone
        hosts = list(covering_hosts(place.host))
        if place.wildcard:
            hosts.extend(self._under.get(base_of(place.host), ()))
        for host in hosts:
            for held in self._by_host.get(host, ()):
                if held in found:
                    continue
                held_place = self._places.get(held)
                if held_place is not None and paths_overlap(place, held_place):
                    holders = self._holders.get(held)
                    if holders:
                        found[held] = holders
        return found

    def __len__(self) -> int:
        """Distinct keys held."""
        return len(self._holders)

    # ---- writes (serialised by the caller) ----

    def hold(self, holder: H, keys: frozenset[str]) -> None:
        """``holder`` now holds exactly ``keys`` (none: it holds nothing any longer)."""
        before = self._held.get(holder, _NO_KEYS)
        if before == keys:
            return
        for key in before - keys:
            remaining = self._holders.get(key, frozenset()) - {holder}
            if remaining:
                self._holders[key] = remaining
            else:
                # Holders go before the host index, so a reader never finds a key by host
                # that has no holders left to name (it skips it).
                self._holders.pop(key, None)
                self._unindex(key)
        for key in keys - before:
            current = self._holders.get(key)
            if current is None:
                self._index(key)
            self._holders[key] = (current or frozenset()) | {holder}
        if keys:
            self._held[holder] = keys
        else:
            self._held.pop(holder, None)

    def clear(self) -> None:
        self._holders, self._held = {}, {}
        self._places, self._by_host, self._under = {}, {}, {}

    def _index(self, key: str) -> None:
        if self.match is KeyMatch.EXACT:
            return
        try:
            place = parse_place(key)
        except PlaceError:
            return  # held, and found by exact lookup, but overlapping nothing else
        self._places[key] = place
        host = place.host
        keys = self._by_host.get(host)
        self._by_host[host] = (keys or _NO_KEYS) | {key}
        if keys is None:
            for domain in parents(base_of(host)):
                self._under[domain] = self._under.get(domain, _NO_KEYS) | {host}

    def _unindex(self, key: str) -> None:
        place = self._places.pop(key, None)
        if place is None:
            return
        host = place.host
        keys = self._by_host.get(host, _NO_KEYS) - {key}
        if keys:
            self._by_host[host] = keys
            return
        self._by_host.pop(host, None)
        for domain in parents(base_of(host)):
            hosts = self._under.get(domain, _NO_KEYS) - {host}
            if hosts:
                self._under[domain] = hosts
            else:
                self._under.pop(domain, None)

