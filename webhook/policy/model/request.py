"""The typed admission request the engine judges, independent of how it arrived."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from webhook.policy.model.kinds import SHORT_NAMES, key_of

# Built once per admission, these records take a hand-written ``__init__`` instead of a
# frozen dataclass's: mypyc compiles a written ``__init__`` into native attribute stores,
# while the dataclasses module's generated one stays interpreted and a frozen one sets each
# field through ``object.__setattr__`` (about 1 µs for UserInfo, 3.5 µs for
# AdmissionRequest, a few percent of a request). ``Final`` keeps every field read-only to
# mypy, and, compiled, at run time too; the dataclass decorator still writes ``__eq__`` and
# ``__repr__`` from the fields (init=False: it leaves ``__init__`` alone).


@dataclass(slots=True, init=False, unsafe_hash=True)
class UserInfo:
    # unsafe_hash: hashable by its fields as the frozen dataclass was (Final: never changed).
    username: Final[str]
    groups: Final[tuple[str, ...]]
    uid: Final[str]

    def __init__(self, username: str = "", groups: tuple[str, ...] = (), uid: str = "") -> None:
        self.username = username
        self.groups = groups
        self.uid = uid


# The user of a request that names none (UserInfo is immutable, so one serves them all).
NO_USER = UserInfo()


class BodyFacts:
    """What an AdmissionReview's bytes tell about the request, each worked out on first ask
    (a search of the body, far cheaper than a walk of a large object, dearer than one of a
    small one: the engine asks only for kinds whose policies walk much).

    ``null_free``: no null sits inside ``object`` or ``oldObject``. Every JSON null is the
    four bytes ``null``; when there are no more of them than the nulls the envelope and the
    request hold at their top level (the API server sends ``"oldObject":null`` on CREATE),
    none sits deeper. ``max_items``: no list or map in the request holds more items, since
    one of n items holds n - 1 commas. Text inside strings only makes either count larger,
    never wrong.
    """

    __slots__ = ("_body", "_envelope", "_max_items", "_null_free")

    def __init__(self, body: bytes, envelope: Mapping[str, Any],
                 request: Mapping[str, Any]) -> None:
        self._body = body
        self._envelope = (envelope, request)  # the parsed review and its request
        self._null_free: bool | None = None
        self._max_items: int | None = None

    @property
    def searched(self) -> bool:
        """Whether anyone asked (a search of the body ran)."""
        return self._null_free is not None or self._max_items is not None

    @property
    def null_free(self) -> bool:
        if self._null_free is None:
            envelope, request = self._envelope
            top_level = [*envelope.values()].count(None) + [*request.values()].count(None)
            self._null_free = self._body.count(b"null") == top_level
        return self._null_free

    @property
    def max_items(self) -> int:
        if self._max_items is None:
            self._max_items = self._body.count(b",") + 1
        return self._max_items


@dataclass(slots=True, init=False)
class AdmissionRequest:
    """One admission, as the API server or an offline caller describes it.

    ``raw`` is the AdmissionReview ``request`` mapping (what CEL sees as ``request``);
    offline callers get one synthesised by :func:`make_request`. ``judged_at`` (Unix time)
    is when the request is judged, set by whoever builds it from its own clock: the engine
    never reads one, and judges PolicyException expiry against this (see exceptions.py).
    """

    uid: Final[str]
    kind: Final[str]
    group: Final[str]
    version: Final[str]
    resource: Final[str]
    namespace: Final[str]
    name: Final[str]
    operation: Final[str]
    object: Final[Mapping[str, Any] | None]
    old_object: Final[Mapping[str, Any] | None]
    user: Final[UserInfo]
    dry_run: Final[bool]
    raw: Final[Mapping[str, Any]]
    judged_at: Final[float | None]
    # What the review's bytes tell (None: offline requests, whose objects the engine walks).
    # (Not Final: mypy reads a field() as the value; nothing assigns them after __init__.)
    facts: BodyFacts | None = field(compare=False, repr=False)
    # The key of the request's kind (see kinds.py): what the engine dispatches on, read a
    # few times per policy, so worked out once.
    key: str = field(init=False, compare=False, repr=False)

    def __init__(
        self, uid: str, kind: str, group: str, version: str, resource: str, namespace: str,
        name: str, operation: str, object: Mapping[str, Any] | None,
        old_object: Mapping[str, Any] | None, user: UserInfo = NO_USER,
        dry_run: bool = False, raw: Mapping[str, Any] | None = None,
        judged_at: float | None = None, facts: BodyFacts | None = None,
    ) -> None:
        self.uid = uid
        self.kind = kind
        self.group = group
        self.version = version
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.operation = operation
        self.object = object
        self.old_object = old_object
        self.user = user
        self.dry_run = dry_run
        self.raw = {} if raw is None else raw
        self.judged_at = judged_at
        self.facts = facts
        self.key = key_of(group, kind)

    @property
    def subject(self) -> Mapping[str, Any] | None:
        """The object the request is about: the new one, or the old one for DELETE."""
        return self.object if self.object is not None else self.old_object


def make_request(
    operation: str,
    obj: Mapping[str, Any] | None,
    old_object: Mapping[str, Any] | None = None,
    *,
    namespace: str | None = None,
    user: UserInfo | None = None,
    dry_run: bool = False,
    uid: str = "offline",
    judged_at: float | None = None,
) -> AdmissionRequest:
    """Build a request for offline use (tests, ``check``, ``audit``) as the API server would."""
    subject = obj if obj is not None else old_object
    if subject is None:
        raise ValueError("an admission request needs an object or an oldObject")
    kind = str(subject.get("kind", ""))
    api_version = str(subject.get("apiVersion", "v1"))
    group, _, version = api_version.rpartition("/")
    known = SHORT_NAMES.get(kind)
    # A kind edgewarden does not know gets the API server's default plural.
    resource = known.resource if known is not None and known.group == group else kind.lower() + "s"
    metadata = subject.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}  # a malformed object still gets judged (its policies fail as they must)
    ns = namespace if namespace is not None else str(metadata.get("namespace") or "default")
    name = metadata.get("name")
    name = name if isinstance(name, str) else ""
    user = user or UserInfo(username="edgewarden-offline")
    raw: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name,
        "namespace": ns,
        "operation": operation,
        "userInfo": {"username": user.username, "groups": list(user.groups)},
        "dryRun": dry_run,
    }
    return AdmissionRequest(
        uid=uid,
        kind=kind,
        group=group,
        version=version,
        resource=resource,
        namespace=ns,
        name=name,
        operation=operation,
        object=obj,
        old_object=old_object,
        user=user,
        dry_run=dry_run,
        raw=raw,
        judged_at=judged_at,
    )
