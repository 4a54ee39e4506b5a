"""Claims: the API server arbitrates limits and unique keys between replicas.

An in-process count is exact within one replica only. Before an admission that takes a
place under a ``limit`` (one no ResourceQuota backs) or a ``unique`` key is allowed, it
writes a *claim* into an object of edgewarden's ``Claim`` CRD, in edgewarden's own
namespace, with a compare-and-swap: a create (409 when another got there first) or an
update carrying the ``resourceVersion`` it read (409 when anything changed since). A
replica that loses the swap reads again and judges again, so two admissions on different
replicas can never both take the last place or the same host.

One Claim object per arbitrated *unit*, holding entries (who, since when, in which state):

* ``Key``: a ``unique`` index's key, or, with ``match: HostPath``, a host; every entry is
  one namespace's key on it (``pay.example.com Prefix /login``). Entries of different
  namespaces on one host may coexist when their paths do not overlap; the ownership rule
  (webhook/policy/ownership.py) judges the entries exactly as it judges the cache.
* ``Count``: one namespace's count under one limit; an entry per counted object admitted.
  The count is the union of the cache's counted names and the live entries' objects, so
  objects from before claims existed count too, and the cap is compared with it.

Keys of different hosts can overlap (``*.example.com`` covers ``pay.example.com``), so a
per-host swap does not arbitrate them alone: after its swaps, an admission holding a
HostPath key lists the wildcard claims of its index (a wildcard lists every claim of its
index) and withdraws when an overlapping entry of another namespace is there. Two such
admissions cannot both pass: each wrote before it read, and the API server's reads are
linearizable, so the later reader sees the earlier writer.

Entry states, and what blocks others:

* ``Pending``: written at admission; blocks until ``expiresAt`` (the API server's webhook
  timeout plus a margin: past it the API server has either stored the object or given up).
* ``Held``: the object appeared (the leader's claims controller saw it); blocks until the
  object goes, when the controller releases the entry.
* ``Expired``: a pending entry whose object never appeared, kept as a tombstone for the
  cool-down. While one is there, new pending entries on that unit do not block others
  (``blocking: false``) until their object appears: a review that is not followed by an
  object (fabricated, or refused later in the chain) holds a place for seconds, and
  repeating it does not renew the hold.

A pending entry whose object the reading replica's cache already shows counts as held
(the controller may not have confirmed it yet).

What a claim costs in API-server writes: one write per unit an allowed create takes (a
conflict retries it), one when the object appears, one when it goes; denied and dry-run
requests write nothing (docs/replicas.md).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from webhook.policy.blocks import ownership
from webhook.policy.blocks.keys import UniqueIndex
from webhook.policy.model.decision import LimitClaim
from webhook.policy.model.hostpath import PlaceError, parse_place
from webhook.policy.model.key_table import KeyMatch, KeyTable
from webhook.policy.model.kinds import NAMESPACE
from webhook.policy.model.ports import ClusterView, KeyIndex, ObjectCounter

log = logging.getLogger("edgewarden.claims")

GROUP = "edgewarden.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Claim"
PLURAL = "claims"
KEY, COUNT = "Key", "Count"
PENDING, HELD, EXPIRED = "Pending", "Held", "Expired"
SPACE_LABEL = "edgewarden.dev/claim-space"  # hash of the index or counter the unit is in
WILDCARD_LABEL = "edgewarden.dev/claim-wildcard"  # "true" on a wildcard host's claim
MANAGED_BY = {"app.kubernetes.io/managed-by": "edgewarden"}
UNNAMED = "(name not known yet)"
# Compare-and-swap attempts per unit before the admission fails by its failurePolicy: a
# loser rereads and judges again, so only a unit written this often in one moment runs out.
MAX_ATTEMPTS = 25
# Rounds of write-then-read across hosts before two overlapping pending admissions that
# keep seeing each other are both refused (each round pauses a random moment).
DEAD_HEAT_ATTEMPTS = 4


class ClaimConflict(Exception):
    """The API server refused a write: the object changed (or appeared) since it was read."""


class ClaimUnavailable(Exception):
    """The claim could not be read or written (API server down, CRD missing, RBAC)."""


class ClaimStore(Protocol):
    """The Claim objects of one namespace (webhook/cluster/claims_api.py; tests: a double)."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def create(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, name: str, resource_version: str) -> None: ...

    def list(self, label_selector: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A claim another namespace (or the cap) already has: the admission is denied."""

    policy: str
    message: str


@dataclass(frozen=True, slots=True)
class Admission:
    """Who claims: the request's uid, namespace, kind and object name ("" when unnamed)."""

    uid: str
    namespace: str
    kind: str
    name: str
    namespace_known: bool = True  # the cache holds its Namespace (the API server's do)


@dataclass(frozen=True, slots=True)
class LimitPlace:
    """One limit place to claim, with what the edge knows of the limit."""

    claim: LimitClaim
    counter: ObjectCounter
    maximum: int
    message: str  # the limit's message, or the default one


@dataclass(frozen=True, slots=True)
class KeyPlace:
    """The keys of one ``unique`` policy to claim, and its index."""

    policy: str
    index: UniqueIndex
    message: str  # the policy's unique.message, or the default one
    keys: frozenset[str]


@dataclass(slots=True)
class Entry:
    namespace: str
    kind: str
    object: str  # "" until the object's name is known (generateName)
    uid: str  # the admission that wrote it
    since: float  # Unix time
    state: str = PENDING
    key: str = ""  # Key claims: the unique key
    expires: float | None = None  # Pending: until; Expired: end of the cool-down
    blocking: bool = True

    def live(self, now: float) -> bool:
        """Whether this entry holds its place against others at ``now``."""
        if self.state == HELD:
            return True
        return (self.state == PENDING and self.blocking and self.expires is not None
                and now < self.expires)

    def holder(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.object or UNNAMED)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "kind": self.kind,
                               "object": self.object, "uid": self.uid,
                               "since": _timestamp(self.since), "state": self.state}
        if self.key:
            out["key"] = self.key
        if self.expires is not None:
            out["expiresAt"] = _timestamp(self.expires)
        if not self.blocking:
            out["blocking"] = False
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        expires = data.get("expiresAt")
        return cls(namespace=str(data.get("namespace") or ""), kind=str(data.get("kind") or ""),
                   object=str(data.get("object") or ""), uid=str(data.get("uid") or ""),
                   since=_parse_time(data.get("since")), state=str(data.get("state") or PENDING),
                   key=str(data.get("key") or ""),
                   expires=_parse_time(expires) if expires else None,
                   blocking=data.get("blocking") is not False)


@dataclass(slots=True)
class Claim:
    """One Claim object, parsed: its unit and entries, and the resourceVersion read."""

    name: str
    type: str
    policy: str
    subject: str  # the host or key (Key), the namespace (Count)
    space: str  # hash of the index or counter
    entries: list[Entry] = field(default_factory=list)
    resource_version: str | None = None  # None: not in the API server yet
    wildcard: bool = False

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Claim:
        metadata = body.get("metadata") or {}
        spec = body.get("spec") or {}
        labels = metadata.get("labels") or {}
        return cls(name=str(metadata.get("name") or ""), type=str(spec.get("type") or KEY),
                   policy=str(spec.get("policy") or ""), subject=str(spec.get("subject") or ""),
                   space=str(labels.get(SPACE_LABEL) or ""),
                   entries=[Entry.from_dict(e) for e in spec.get("entries") or []
                            if isinstance(e, dict)],
                   resource_version=metadata.get("resourceVersion"),
                   wildcard=labels.get(WILDCARD_LABEL) == "true")

    def body(self, namespace: str) -> dict[str, Any]:
        labels = {**MANAGED_BY, SPACE_LABEL: self.space}
        if self.wildcard:
            labels[WILDCARD_LABEL] = "true"
        metadata: dict[str, Any] = {"name": self.name, "namespace": namespace, "labels": labels}
        if self.resource_version is not None:
            metadata["resourceVersion"] = self.resource_version
        shown = [e for e in self.entries if e.state != EXPIRED] or self.entries
        states = {e.state for e in shown}
        return {
            "apiVersion": API_VERSION, "kind": KIND, "metadata": metadata,
            "spec": {
                "type": self.type, "policy": self.policy, "subject": self.subject,
                # What `kubectl get claims` prints (additionalPrinterColumns).
                "holders": ", ".join(sorted({f"{e.namespace}/{e.object or UNNAMED}"
                                             for e in shown}))[:1000],
                "state": HELD if HELD in states else PENDING if PENDING in states else EXPIRED,
                "since": _timestamp(min((e.since for e in shown), default=time.time())),
                "entries": [e.to_dict() for e in self.entries],
            },
        }


def space_of(identity: str) -> str:
    """A label-safe hash of an index's or counter's key (which holds CEL source)."""
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def key_claim_name(index_key: str, unit: str) -> str:
    return "key-" + hashlib.sha256(f"{index_key}\0{unit}".encode()).hexdigest()[:40]


def count_claim_name(counter_key: str, namespace: str) -> str:
    return "count-" + hashlib.sha256(f"{counter_key}\0{namespace}".encode()).hexdigest()[:40]


def unit_of(index: KeyIndex, key: str) -> str:
    """What one Claim object arbitrates: a HostPath key's host, else the key itself."""
    if index.match is KeyMatch.HOST_PATH:
        try:
            return parse_place(key).host
        except PlaceError:
            return key
    return key


@dataclass(frozen=True, slots=True)
class Taken:
    """A unit this admission wrote an entry into (to withdraw on a later refusal)."""

    name: str
    key: str  # "" for a count entry


@dataclass
class ClaimSettings:
    pending_seconds: float = 10.0  # webhook timeout + margin: a pending entry's life
    cooldown_seconds: float = 300.0  # how long an expired pending entry weakens new ones
    # How long one admission may spend on its claims: under the API server's webhook
    # timeout, so a slow API server gets our message (and failurePolicy), not a timeout.
    deadline_seconds: float = 4.0
    # A held Count entry retires this long after its claim: by then every replica's cache
    # counts its object, so a Count claim holds only recent admissions and stays small
    # however many objects its namespace counts.
    retire_seconds: float = 60.0


class ClaimBook:
    """Takes, withdraws and judges claims for admissions (blocking API calls)."""

    def __init__(self, store: ClaimStore, namespace: str, settings: ClaimSettings | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.namespace = namespace
        self.settings = settings or ClaimSettings()
        self.clock = clock
        self.writes = 0
        self.conflicts = 0
        self.taken = 0  # admissions whose claims were all taken
        self.refused = 0  # admissions refused by a claim
        self.failed = 0  # admissions whose claims the API server could not settle
        self._deadline = threading.local()  # per admission (each runs on its own thread)

    def counters(self) -> dict[str, int]:
        """What /readyz shows of the claims taken by this replica."""
        return {"taken": self.taken, "refused": self.refused, "failed": self.failed,
                "writes": self.writes, "conflicts": self.conflicts}

    def _check_deadline(self, what: str) -> None:
        deadline = getattr(self._deadline, "value", None)
        if deadline is not None and time.monotonic() > deadline:
            raise ClaimUnavailable(f"the claim on {what} took longer than "
                                   f"{self.settings.deadline_seconds:g} s")

    # ---- taking ----

    def take(self, admission: Admission, keys: Sequence[KeyPlace],
             limits: Sequence[LimitPlace], view: ClusterView) -> list[Refusal]:
        """Claim every place; the refusals when one is taken (nothing is left held then).
        ClaimUnavailable when the API server cannot say."""
        taken: list[Taken] = []
        self._deadline.value = time.monotonic() + self.settings.deadline_seconds
        try:
            refusals: list[Refusal] = []
            for place in limits:
                refusal = self._take_count(admission, place, view, taken)
                if refusal is not None:
                    refusals.append(refusal)
                    break
            for key_place in keys if not refusals else ():
                found = self._take_keys(admission, key_place, view, taken)
                if found:
                    refusals.extend(found)
                    break
        except BaseException:
            self.failed += 1
            self._deadline.value = None  # the withdrawal may take its time
            self.withdraw(admission, taken)
            raise
        self._deadline.value = None
        if refusals:
            self.refused += 1
            self.withdraw(admission, taken)
        else:
            self.taken += 1
        return refusals

    def _take_count(self, admission: Admission, place: LimitPlace, view: ClusterView,
                    taken: list[Taken]) -> Refusal | None:
        claim = place.claim
        name = count_claim_name(place.counter.key, claim.namespace)
        for _ in range(MAX_ATTEMPTS):
            self._check_deadline(f"{claim.policy} in namespace {claim.namespace}")
            now = self.clock()
            current = self._read(name) or Claim(name, COUNT, claim.policy, claim.namespace,
                                                space_of(place.counter.key))
            cooling = self._prune(current, now, view, counter=place.counter)
            mine = [e for e in current.entries if e.state != EXPIRED and _same_object(e, admission)]
            if mine:
                return None  # this admission (or this object) holds its place already
            counted = set(view.counted_names(claim.namespace, place.counter))
            unnamed = 0
            for entry in current.entries:
                if entry.live(now) or (entry.state == PENDING and entry.object in counted):
                    if entry.object:
                        counted.add(entry.object)
                    else:
                        unnamed += 1
            counted.discard(admission.name)
            count = len(counted) + unnamed
            if count >= place.maximum:
                return Refusal(claim.policy, f"{place.message} (namespace {claim.namespace} "
                               f"has {count} of {place.maximum}, counting the creates other "
                               "replicas admitted a moment ago)")
            current.entries.append(self._entry(admission, now, blocking=not cooling))
            if self.write(current):
                taken.append(Taken(name, ""))
                return None
        raise ClaimUnavailable(f"the claim for {claim.policy} in namespace {claim.namespace} "
                               f"kept changing under {MAX_ATTEMPTS} attempts")

    def _take_keys(self, admission: Admission, place: KeyPlace, view: ClusterView,
                   taken: list[Taken]) -> list[Refusal]:
        index = place.index
        units: dict[str, set[str]] = {}
        for key in sorted(place.keys):
            units.setdefault(unit_of(index, key), set()).add(key)
        for attempt in range(DEAD_HEAT_ATTEMPTS):
            mine: list[Taken] = []
            for unit, keys in units.items():
                name = key_claim_name(index.key, unit)
                refusal = self._take_unit(admission, place, name, unit, keys, view)
                if refusal is not None:
                    return [refusal]
                mine.append(Taken(name, unit))
                taken.append(mine[-1])
            if index.match is not KeyMatch.HOST_PATH:
                return []
            verdict, heat = self._overlaps_across_hosts(admission, place, units, view)
            if not verdict.conflicts:
                return []
            if not heat or attempt == DEAD_HEAT_ATTEMPTS - 1:
                return [Refusal(place.policy, f"{place.message} ({verdict.detail()})")]
            # A dead heat: both wrote before either read, so both saw the other's pending
            # entry. Both step back; a random pause lets one go first next time.
            self.withdraw(admission, mine)
            del taken[len(taken) - len(mine):]
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        return []  # not reached: the last attempt returns

    def _overlaps_across_hosts(self, admission: Admission, place: KeyPlace,
                               units: Mapping[str, set[str]], view: ClusterView,
                               ) -> tuple[ownership.Verdict, bool]:
        """After the swaps: what the admission's keys overlap in other hosts' claims, and
        whether every such entry is pending (a dead heat) rather than held."""
        index = place.index
        wildcard = any(unit.startswith("*.") for unit in units)
        selector = f"{SPACE_LABEL}={space_of(index.key)}"
        if not wildcard:
            selector += f",{WILDCARD_LABEL}=true"
        others = [Claim.parse(body) for body in self._list(selector)]
        now = self.clock()
        table: KeyTable[tuple[str, str, str]] = KeyTable(index.match)
        held: dict[tuple[str, str, str], set[str]] = {}
        pending_only = True
        for other in others:
            for entry in other.entries:
                if entry.namespace != admission.namespace and entry.live(now):
                    held.setdefault(entry.holder(), set()).add(entry.key)
                    pending_only = pending_only and entry.state == PENDING
        for holder, keys_held in held.items():
            table.hold(holder, frozenset(keys_held))
        verdict = ownership.judge(index, place.keys, admission.namespace,
                                  _WithClaims(view, table))
        return verdict, pending_only

    def _take_unit(self, admission: Admission, place: KeyPlace, name: str, unit: str,
                   keys: set[str], view: ClusterView) -> Refusal | None:
        index = place.index
        for _ in range(MAX_ATTEMPTS):
            self._check_deadline(unit)
            now = self.clock()
            current = self._read(name) or Claim(name, KEY, place.policy, unit,
                                                space_of(index.key),
                                                wildcard=unit.startswith("*."))
            cooling = self._prune(current, now, view, index=index)
            table: KeyTable[tuple[str, str, str]] = KeyTable(index.match)
            held: dict[tuple[str, str, str], set[str]] = {}
            for entry in current.entries:
                if entry.namespace != admission.namespace and (
                        entry.live(now) or (entry.state == PENDING
                                            and _seen(view, index, entry))):
                    held.setdefault(entry.holder(), set()).add(entry.key)
            for holder, keys_held in held.items():
                table.hold(holder, frozenset(keys_held))
            verdict = ownership.judge(index, keys, admission.namespace, _WithClaims(view, table))
            if verdict.conflicts:
                return Refusal(place.policy, f"{place.message} ({verdict.detail()})")
            have = {e.key for e in current.entries
                    if e.namespace == admission.namespace and e.state != EXPIRED}
            missing = sorted(keys - have)
            if not missing:
                return None  # held by this namespace already (a repeat never renews)
            for key in missing:
                entry = self._entry(admission, now, blocking=not cooling)
                entry.key = key
                current.entries.append(entry)
            if self.write(current):
                return None
        raise ClaimUnavailable(f"the claim on {unit} kept changing under {MAX_ATTEMPTS} "
                               "attempts")

    def _entry(self, admission: Admission, now: float, *, blocking: bool) -> Entry:
        # A namespace the cache does not know is no namespace the API server sends reviews
        # for (yet): its entry is recorded but blocks nobody until its object appears.
        return Entry(admission.namespace, admission.kind, admission.name, admission.uid, now,
                     PENDING, expires=now + self.settings.pending_seconds,
                     blocking=blocking and admission.namespace_known)

    def _prune(self, claim: Claim, now: float, view: ClusterView, *,
               index: KeyIndex | None = None, counter: ObjectCounter | None = None) -> bool:
        """Turn expired pending entries into tombstones and drop old tombstones; True
        while the unit cools down (new entries there do not block)."""
        cooldown = self.settings.cooldown_seconds
        kept: list[Entry] = []
        cooling = False
        for entry in claim.entries:
            if entry.state == PENDING and entry.expires is not None and now >= entry.expires:
                if (index is not None and _seen(view, index, entry)) or (
                        counter is not None and entry.object
                        and entry.object in view.counted_names(entry.namespace, counter)):
                    kept.append(entry)  # appeared; the controller confirms it
                    continue
                if not entry.blocking:
                    continue  # a weak entry never extends the cool-down
                entry = replace(entry, state=EXPIRED, expires=entry.expires + cooldown)
            if entry.state == EXPIRED:
                if entry.expires is None or now >= entry.expires:
                    continue
                cooling = True
            kept.append(entry)
        claim.entries = kept
        return cooling

    # ---- withdrawing ----

    def withdraw(self, admission: Admission, taken: Iterable[Taken]) -> None:
        """Remove this admission's fresh entries (it was refused); best effort: what
        stays expires as any pending entry does."""
        for unit in taken:
            try:
                self._remove(unit.name, lambda e: e.uid == admission.uid and e.state == PENDING)
            except (ClaimUnavailable, ClaimConflict) as error:
                log.warning("could not withdraw claim %s: %s (it expires on its own)",
                            unit.name, error)

    def _remove(self, name: str, drop: Callable[[Entry], bool]) -> None:
        for _ in range(MAX_ATTEMPTS):
            current = self._read(name)
            if current is None:
                return
            before = len(current.entries)
            current.entries = [e for e in current.entries if not drop(e)]
            if len(current.entries) == before:
                return
            if self.write(current):
                return
        raise ClaimConflict(f"{name} kept changing")

    # ---- the API ----

    def _read(self, name: str) -> Claim | None:
        body = self.store.get(name)
        return Claim.parse(body) if body is not None else None

    def _list(self, selector: str) -> list[dict[str, Any]]:
        return self.store.list(selector)

    def write(self, claim: Claim) -> bool:
        """Compare-and-swap; False when another writer came first (read again)."""
        try:
            if not claim.entries:
                if claim.resource_version is not None:
                    self.store.delete(claim.name, claim.resource_version)
            elif claim.resource_version is None:
                self.store.create(claim.body(self.namespace))
            else:
                self.store.replace(claim.body(self.namespace))
        except ClaimConflict:
            self.conflicts += 1
            return False
        self.writes += 1
        return True


class _WithClaims:
    """A ClusterView whose key holders include the claims' live entries."""

    def __init__(self, base: ClusterView, table: KeyTable[tuple[str, str, str]]) -> None:
        self._base = base
        self._table = table

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._base.get_namespace(name)

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        return self._base.counted_names(namespace, counter)

    @property
    def synced(self) -> bool:
        return self._base.synced

    def key_holders(self, index: KeyIndex, key: str) -> Mapping[str, Set[tuple[str, str, str]]]:
        found = {held: frozenset(holders)
                 for held, holders in self._base.key_holders(index, key).items()}
        for held, holders in self._table.overlapping(key).items():
            found[held] = found.get(held, frozenset()) | holders
        return found


def _seen(view: ClusterView, index: KeyIndex, entry: Entry) -> bool:
    """Whether the cache shows an object of the entry's namespace holding its key."""
    holders = view.key_holders(index, entry.key).get(entry.key, ())
    return any(h[1] == entry.namespace and h[0] != NAMESPACE.key for h in holders)


def _same_object(entry: Entry, admission: Admission) -> bool:
    if entry.namespace != admission.namespace:
        return False
    if admission.name and entry.object:
        return entry.object == admission.name
    return entry.uid == admission.uid


def _timestamp(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> float:
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# ---- the claims controller's pass (leader only; webhook/controllers/claims.py) ----


@dataclass
class SweepResult:
    confirmed: int = 0  # pending entries whose object appeared
    released: int = 0  # entries whose object went
    retired: int = 0  # held Count entries every cache counts by now
    expired: int = 0  # pending entries whose object never appeared (now tombstones)
    orphans: int = 0  # claims of an index or counter no loaded policy has
    deleted: int = 0  # claims left without entries
    conflicts: int = 0  # changed under us: next pass


def sweep(book: ClaimBook, cluster: ClusterView, indexes: Iterable[KeyIndex],
          counters: Iterable[ObjectCounter]) -> SweepResult:
    """One pass over every Claim: confirm, release, expire, collect orphans."""
    by_index = {space_of(i.key): i for i in indexes}
    by_counter = {space_of(c.key): c for c in counters}
    result = SweepResult()
    now = book.clock()
    for body in book.store.list(",".join(f"{k}={v}" for k, v in MANAGED_BY.items())):
        claim = Claim.parse(body)
        index = by_index.get(claim.space) if claim.type == KEY else None
        counter = by_counter.get(claim.space) if claim.type == COUNT else None
        if index is not None:
            _settle_keys(claim, index, cluster, now, book.settings, result)
        elif counter is not None:
            _settle_count(claim, counter, cluster, now, book.settings, result)
        else:
            result.orphans += 1
            claim.entries = []  # its policy is gone: nothing it holds is judged any more
        if claim.entries == Claim.parse(body).entries:
            continue
        if not book.write(claim):
            result.conflicts += 1
        elif not claim.entries:
            result.deleted += 1
    return result


def _settle_keys(claim: Claim, index: KeyIndex, cluster: ClusterView, now: float,
                 settings: ClaimSettings, result: SweepResult) -> None:
    kept: list[Entry] = []
    for entry in claim.entries:
        holders = sorted(h[2] for h in cluster.key_holders(index, entry.key).get(entry.key, ())
                         if h[1] == entry.namespace and h[0] != NAMESPACE.key)
        settled = _settle(entry, holders, now, settings, result)
        if settled is not None:
            kept.append(settled)
    claim.entries = kept


def _settle_count(claim: Claim, counter: ObjectCounter, cluster: ClusterView, now: float,
                  settings: ClaimSettings, result: SweepResult) -> None:
    counted = set(cluster.counted_names(claim.subject, counter))
    named = {e.object for e in claim.entries if e.object}
    # Unnamed entries (generateName) take the counted objects no entry names, oldest first.
    spare = sorted(counted - named)
    kept: list[Entry] = []
    for entry in sorted(claim.entries, key=lambda e: e.since):
        if entry.object:
            holders = [entry.object] if entry.object in counted else []
        else:
            holders = [spare.pop(0)] if spare and entry.state == PENDING else []
        if entry.state == HELD and holders and now - entry.since >= settings.retire_seconds:
            result.retired += 1
            continue  # every cache counts it by now
        settled = _settle(entry, holders, now, settings, result)
        if settled is not None:
            kept.append(settled)
    claim.entries = kept


def _settle(entry: Entry, holders: list[str], now: float, settings: ClaimSettings,
            result: SweepResult) -> Entry | None:
    """The entry after this pass (None: gone), given the objects the cache shows holding it."""
    if entry.state == HELD:
        if holders:
            if entry.object not in holders:
                return replace(entry, object=holders[0])  # another object keeps it held
            return entry
        result.released += 1
        return None
    if entry.state == PENDING:
        if holders:
            result.confirmed += 1
            name = entry.object if entry.object in holders else holders[0]
            return replace(entry, state=HELD, object=name, expires=None, blocking=True)
        if entry.expires is not None and now >= entry.expires:
            result.expired += 1
            if not entry.blocking:
                return None  # a weak entry never extends the cool-down
            return replace(entry, state=EXPIRED, expires=entry.expires + settings.cooldown_seconds)
        return entry
    if entry.expires is None or now >= entry.expires:
        return None  # the cool-down is over
    return entry
