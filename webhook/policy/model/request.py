"""The typed admission request the engine judges, independent of how it arrived."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.model.kinds import SHORT_NAMES, key_of


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """One admission, as the API server or an offline caller describes it.

    ``raw`` is the AdmissionReview ``request`` mapping (what CEL sees as ``request``);
    offline callers get one synthesised by :func:`make_request`. ``judged_at`` (Unix time)
    is when the request is judged, set by whoever builds it from its own clock: the engine
    never reads one, and judges PolicyException expiry against this (see exceptions.py).
    """

    uid: str
    kind: str
    group: str
    version: str
    resource: str
    namespace: str
    name: str
    operation: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    user: UserInfo = field(default_factory=UserInfo)
    dry_run: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)
    judged_at: float | None = None
    # What the review's bytes told for two searches (review.py): that no null sits inside
    # ``object`` or ``old_object``, and a bound on the items of any list or map in the
    # request. Either spares the engine a walk of the object; unknown (offline requests)
    # means the engine walks.
    null_free: bool = False
    max_items: int | None = None

    @property
    def key(self) -> str:
        """The key of the request's kind (see kinds.py): what the engine dispatches on."""
        return key_of(self.group, self.kind)

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
