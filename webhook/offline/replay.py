"""``edgewarden replay``: the admissions an API-server audit log records, judged again.

Each write to a kind the policies govern (create, update, patch, delete) is rebuilt into
the admission request the API server sent: the operation, the object, the old object, the
user (the impersonated one when there is one), dry run (``dryRun=All`` in the request URI)
and the time (PolicyException expiry). The requests are replayed in the log's order over an
in-memory cluster that follows the log itself: each write that succeeded (not a dry run)
is applied to it after being judged, so limits and unique keys see the cluster as it was
at that moment. A ``--cluster-state`` file seeds what existed before the log begins.

Rebuilding, per verb (what the event holds depends on the audit level):

* create: ``requestObject``, the object as the client sent it (before any mutating
  webhook), so our own patch is computed again and can be compared with the recorded one;
* update: ``requestObject`` (a PUT carries the whole object); the old object from the
  replayed cluster;
* patch: ``requestObject`` is the patch, not the object. The object is ``responseObject``
  when the level is RequestResponse (as stored, after every mutation); else the patch is
  applied to the old object when that is unambiguous (a JSON Patch, or a merge patch with
  no lists); otherwise the request is listed as not rebuilt, saying why;
* delete: the old object from the replayed cluster (or a returned object);
* deletecollection, subresources (``services/status``: webhooks are not called for it)
  and reads are not admissions of an object: counted, not judged.

A Namespace write updates the cluster too (labels drive namespace selectors and caps).
The recorded outcome is read by :mod:`webhook.offline.apiserver_log`.
"""

from __future__ import annotations

import copy
import datetime
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webhook.cluster.memory import MemoryCluster
from webhook.offline.apiserver_log import AuditLog, LoggedEvent, Recorded, Verdict, recorded_outcome
from webhook.offline.manifests import Location, Manifest
from webhook.offline.results import ObjectResult, Outcome
from webhook.offline.scan import bare_namespace, object_result, with_namespace
from webhook.policy.blocks.patches import PatchError, apply_raw_patch
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import Mode
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet
from webhook.policy.model.kinds import NAMESPACE, KindRef, key_of_object, merge
from webhook.policy.model.namespaces import namespace_object
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import AdmissionRequest, UserInfo, make_request

OPERATIONS = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE"}
READS = frozenset({"get", "list", "watch"})
FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
# The directives of a strategic merge patch: with one of these the patch is not a plain
# merge patch, and applying it as one would be wrong.
_STRATEGIC_KEYS = ("$patch", "$retainKeys", "$deleteFromPrimitiveList", "$setElementOrder")


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """The admission request an event stands for, or why it cannot be rebuilt."""

    request: AdmissionRequest | None
    problem: str = ""  # why not rebuilt ("" when it was)
    notes: tuple[str, ...] = ()  # what is uncertain about the rebuilt request
    # The object is as the client sent it, before mutating webhooks: our patch can be
    # computed again. False for a patch read from responseObject (already mutated).
    before_mutation: bool = True


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One write of a governed kind in the log: who did what, and what was recorded."""

    location: Location  # the log and its line
    audit_id: str
    verb: str
    kind: str
    namespace: str
    name: str
    user: str
    dry_run: bool
    recorded: Recorded
    rebuilt: Rebuilt

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else \
            f"{self.kind}/{self.name}"

    @property
    def operation(self) -> str:
        request = self.rebuilt.request
        return request.operation if request is not None else OPERATIONS.get(self.verb, self.verb)


class Agreement(StrEnum):
    AGREE = "agree"
    DIFFER = "differ"
    NOT_COMPARED = "not compared"


@dataclass(slots=True)
class Replayed:
    """One logged request judged by one policy set."""

    logged: LoggedRequest
    result: ObjectResult | None  # None: not rebuilt
    patch: tuple[dict[str, Any], ...] = ()  # what our mutating webhook would patch
    differences: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool | None:
        return self.result.allowed if self.result is not None else None

    @property
    def agreement(self) -> Agreement:
        if self.result is None or not self.logged.recorded.judged:
            return Agreement.NOT_COMPARED
        return Agreement.DIFFER if self.differences else Agreement.AGREE

    def verdict(self) -> str:
        """What the replay decides, in the recorded outcome's words."""
        if self.result is None:
            return "not rebuilt"
        denied = self.denied_by()
        return f"denied ({', '.join(denied)})" if denied else "admitted"

    def denied_by(self) -> list[str]:
        if self.result is None:
            return []
        return list(dict.fromkeys(f.policy for f in self.result.findings
                                  if f.outcome is Outcome.DENY))


@dataclass(slots=True)
class ReplayReport:
    """What one policy set makes of the log's requests, beside what was recorded."""

    log: str
    policies: PolicySet
    requests: list[Replayed] = field(default_factory=list)
    events: int = 0  # audit events read
    skipped: Counter[str] = field(default_factory=Counter)  # events not judged, by why
    notes: list[str] = field(default_factory=list)

    def count(self, agreement: Agreement) -> int:
        return sum(1 for r in self.requests if r.agreement is agreement)

    @property
    def differing(self) -> list[Replayed]:
        return [r for r in self.requests if r.agreement is Agreement.DIFFER]

    @property
    def not_rebuilt(self) -> list[Replayed]:
        return [r for r in self.requests if r.result is None]

    def agreement_rate(self) -> float | None:
        """Agreeing over compared requests; None when nothing could be compared."""
        compared = self.count(Agreement.AGREE) + self.count(Agreement.DIFFER)
        return self.count(Agreement.AGREE) / compared if compared else None

    def summary(self) -> str:
        agree, differ = self.count(Agreement.AGREE), self.count(Agreement.DIFFER)
        rate = self.agreement_rate()
        parts = [
            f"{self.events} audit event{'s' if self.events != 1 else ''} read",
            f"{len(self.requests)} write{'s' if len(self.requests) != 1 else ''} of governed "
            "kinds replayed",
            f"{agree + differ} compared with a recorded verdict: {agree} agree, {differ} differ"
            + (f" ({rate:.1%} agreement)" if rate is not None else ""),
        ]
        if self.not_rebuilt:
            parts.append(f"{len(self.not_rebuilt)} not rebuilt")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    webhooks: frozenset[str]
    namespaces: frozenset[str] | None = None  # judge only these (None: every namespace)


def replay(
    log: AuditLog,
    policy_sets: Sequence[PolicySet],
    options: ReplayOptions,
    *,
    seed: Iterable[Manifest] = (),
    exceptions: ExceptionSet = NO_EXCEPTIONS,
) -> list[ReplayReport]:
    """Replay ``log`` against each set (one report per set, requests in the same order):
    the same rebuilt requests over the same cluster, so two sets can be compared request by
    request (``edgewarden diff --audit-log``)."""
    kinds = merge(ref for policies in policy_sets for ref in policies.kinds())
    engines = [Engine(policies) for policies in policy_sets]
    reports = [ReplayReport(log.name, policies, events=len(log.events))
               for policies in policy_sets]
    rebuilder = Rebuilder(kinds, seed, options)
    for logged, cluster in rebuilder.requests(log):
        for engine, report in zip(engines, reports, strict=True):
            report.requests.append(judge_logged(engine, logged, cluster, exceptions))
    for report in reports:
        report.skipped = rebuilder.skipped.copy()
        report.notes = list(rebuilder.notes)
    return reports


def judge_logged(engine: Engine, logged: LoggedRequest, cluster: MemoryCluster,
                 exceptions: ExceptionSet) -> Replayed:
    request = logged.rebuilt.request
    if request is None:
        return Replayed(logged, None)
    decision = engine.evaluate(request, cluster, exceptions)
    subject = request.object if request.object is not None else request.old_object
    result = object_result(engine, decision, subject or {}, logged.location)
    # What /mutate answers: Audit-mode mutating policies only report their patch.
    modes = {policy.name: policy.mode for policy in engine.policies.policies}
    patch = tuple(op for mutation in decision.mutations
                  if modes.get(mutation.policy) is not Mode.AUDIT for op in mutation.patch)
    replayed = Replayed(logged, result, patch)
    replayed.differences = differences(replayed)
    return replayed


def differences(replayed: Replayed) -> list[str]:
    """How the replayed decision differs from the recorded one (nothing when either is
    unknown): the verdict, the denying policies, the Audit violations our webhook
    annotated, and our mutating webhook's patch."""
    result = replayed.result
    recorded = replayed.logged.recorded
    if result is None or not recorded.judged:
        return []
    found: list[str] = []
    denied = replayed.denied_by()
    if recorded.verdict is Verdict.ADMITTED and denied:
        found.append(f"recorded admitted; replay denies ({', '.join(denied)})")
    elif recorded.verdict is Verdict.DENIED and not denied:
        found.append(f"recorded denied ({', '.join(recorded.denied_by) or 'no policy named'}); "
                     "replay admits")
    elif recorded.verdict is Verdict.DENIED and sorted(denied) != sorted(recorded.denied_by):
        found.append(f"recorded denied by {', '.join(recorded.denied_by) or 'no policy named'}; "
                     f"replay denies by {', '.join(denied)}")
    if recorded.audited is not None:
        audited = sorted({f.policy for f in result.findings if f.outcome is Outcome.AUDIT})
        if audited != sorted(recorded.audited):
            found.append(f"recorded Audit violations: {', '.join(recorded.audited) or 'none'}; "
                         f"replay: {', '.join(audited) or 'none'}")
    if (recorded.patch is not None and replayed.logged.rebuilt.before_mutation
            and recorded.verdict is Verdict.ADMITTED and list(recorded.patch) != list(
                replayed.patch)):
        found.append(f"recorded patch: {_ops(recorded.patch)}; replay: {_ops(replayed.patch)}")
    return found


def _ops(patch: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(f"{op.get('op')} {op.get('path')}" for op in patch) or "none"


class Rebuilder:
    """Walks a log: rebuilds each governed write and keeps the in-memory cluster in step."""

    def __init__(self, kinds: Iterable[KindRef], seed: Iterable[Manifest],
                 options: ReplayOptions) -> None:
        self.kinds = {(ref.group, ref.resource): ref for ref in kinds}
        self.options = options
        self.cluster = MemoryCluster()
        for manifest in seed:
            obj = dict(manifest.obj)
            if obj.get("kind") == NAMESPACE.kind:
                self.cluster.add(namespace_object(manifest.name, copy.deepcopy(obj)))
            elif any(ref.key == key_of_object(obj) for ref in self.kinds.values()):
                self.cluster.add(with_namespace(obj, manifest.namespace or "default"))
        self.skipped: Counter[str] = Counter()
        self.notes: list[str] = []
        self._unknown_namespaces: set[str] = set()

    def requests(self, log: AuditLog) -> Iterator[tuple[LoggedRequest, MemoryCluster]]:
        """Each governed write with the cluster as it was when it arrived; the write is
        applied to the cluster once the consumer is done with it."""
        for logged_event in log.events:
            event = logged_event.event
            why = self._not_judged(event)
            ref = self._kind(event)
            if why:
                self.skipped[why] += 1
                if ref is not None or _resource(event) == NAMESPACE.resource:
                    self._apply(event, None, ref)
                continue
            assert ref is not None
            logged = self._logged(logged_event, ref, log.name)
            if logged.rebuilt.request is None and _refused_before_reading(event, logged):
                # Authentication, RBAC or a missing namespace: no object, no admission.
                self.skipped["refused before admission (no object in the event)"] += 1
                continue
            if self._wanted(logged.namespace):
                self._know_namespace(logged.namespace)
                yield logged, self.cluster
            else:
                self.skipped["other namespaces (--namespace)"] += 1
            self._apply(event, logged.rebuilt.request, ref)

    # -- what is judged -------------------------------------------------------------------

    def _not_judged(self, event: Mapping[str, Any]) -> str:
        """Why ``event`` is not a governed admission to judge ('' when it is)."""
        if event.get("stage") not in FINAL_STAGES:
            return f"stage {event.get('stage') or 'missing'} (only the final stage is read)"
        verb = str(event.get("verb") or "")
        if verb in READS:
            return "reads"
        ref = self._kind(event)
        if ref is None and _resource(event) == NAMESPACE.resource:
            return "namespaces (followed for their labels)"
        if ref is None:
            return "kinds the policies do not govern"
        subresource = (event.get("objectRef") or {}).get("subresource")
        if subresource:
            return f"subresource {subresource} (no webhook is called for it)"
        if verb == "deletecollection":
            return "deletecollection (names no object)"
        if verb not in OPERATIONS:
            return f"verb {verb}"
        return ""

    def _kind(self, event: Mapping[str, Any]) -> KindRef | None:
        ref = event.get("objectRef") or {}
        return self.kinds.get((str(ref.get("apiGroup") or ""), str(ref.get("resource") or "")))

    def _wanted(self, namespace: str) -> bool:
        return self.options.namespaces is None or namespace in self.options.namespaces

    def _know_namespace(self, name: str) -> None:
        if not name or self.cluster.get_namespace(name) is not None:
            return
        # As check does: an unknown namespace exists with no labels but its name.
        self.cluster.add(bare_namespace(name))
        if name not in self._unknown_namespaces:
            self._unknown_namespaces.add(name)
            self.notes.append(
                f"namespace {name} was created before the log begins: judged with no labels "
                "(seed it with --cluster-state, or log namespaces at level Request)"
            )

    # -- rebuilding -----------------------------------------------------------------------

    def _logged(self, logged_event: LoggedEvent, ref: KindRef, log_name: str) -> LoggedRequest:
        event = logged_event.event
        object_ref = event.get("objectRef") or {}
        namespace = str(object_ref.get("namespace") or "")
        verb = str(event.get("verb"))
        recorded = recorded_outcome(event, self.options.webhooks)
        rebuilt = self._rebuild(event, ref, verb, namespace)
        subject = rebuilt.request.subject if rebuilt.request is not None else None
        name = str(object_ref.get("name") or _name(subject) or _name(event.get("responseObject"))
                   or _name(event.get("requestObject")))
        user = _user(event)
        return LoggedRequest(
            location=Location(log_name, None, logged_event.line),
            audit_id=str(event.get("auditID") or ""),
            verb=verb, kind=ref.kind, namespace=namespace, name=name,
            user=user.username, dry_run=_dry_run(event), recorded=recorded, rebuilt=rebuilt,
        )

    def _rebuild(self, event: Mapping[str, Any], ref: KindRef, verb: str,
                 namespace: str) -> Rebuilt:
        level = str(event.get("level") or "")
        sent = event.get("requestObject")
        returned = _object_of(event.get("responseObject"), ref)
        name = str((event.get("objectRef") or {}).get("name") or "")
        old = self.cluster.get(ref.key, namespace, name) if name else None
        notes: list[str] = []
        if verb == "delete":
            old = old or returned
            if old is None:
                return Rebuilt(None, "the deleted object is unknown (created before the log "
                                     "begins; seed it with --cluster-state)")
            return self._request(event, "DELETE", None, old, namespace, notes)
        if level not in ("Request", "RequestResponse"):
            return Rebuilt(None, f"level {level or 'None'}: the event holds no object (log "
                                 f"{ref.resource} at level Request or RequestResponse)")
        if verb == "create":
            obj = _object_of(sent, ref)
            if obj is None:
                return Rebuilt(None, "the event's requestObject is not the object")
            return self._request(event, "CREATE", obj, None, namespace, notes)
        if verb == "update":
            obj = _object_of(sent, ref)
            if obj is None:
                return Rebuilt(None, "the event's requestObject is not the object")
            if old is None:
                notes.append("old object unknown (created before the log begins)")
            return self._request(event, "UPDATE", obj, old, namespace, notes)
        # patch: the request carries the patch, not the object.
        created = old is None and _code(event) == 201  # server-side apply of a new object
        if returned is not None:
            operation = "CREATE" if created else "UPDATE"
            if old is None and not created:
                notes.append("old object unknown (created before the log begins)")
            return self._request(event, operation, returned, old, namespace, notes,
                                 before_mutation=False)
        if old is None:
            return Rebuilt(None, "a patch of an object the log never showed whole (level "
                                 "RequestResponse records the patched object)")
        patched, why = _apply_patch(old, sent)
        if patched is None:
            return Rebuilt(None, why)
        return self._request(event, "UPDATE", patched, old, namespace, notes)

    def _request(self, event: Mapping[str, Any], operation: str,
                 obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None, namespace: str,
                 notes: list[str], *, before_mutation: bool = True) -> Rebuilt:
        if namespace:
            obj = _namespaced(obj, namespace) if obj is not None else None
            old = _namespaced(old, namespace) if old is not None else None
        request = make_request(
            operation, obj, old, namespace=namespace, user=_user(event),
            dry_run=_dry_run(event), uid=str(event.get("auditID") or "replay"),
            judged_at=_timestamp(event),
        )
        return Rebuilt(request, notes=tuple(notes), before_mutation=before_mutation)

    # -- following the cluster ------------------------------------------------------------

    def _apply(self, event: Mapping[str, Any], request: AdmissionRequest | None,
               ref: KindRef | None) -> None:
        """Apply a write that succeeded (and was no dry run) to the in-memory cluster."""
        code = _code(event)
        if event.get("stage") not in FINAL_STAGES or code is None or not 200 <= code < 300:
            return
        if _dry_run(event) or str(event.get("verb")) not in OPERATIONS:
            return
        object_ref = event.get("objectRef") or {}
        is_namespace = ref is None and _resource(event) == NAMESPACE.resource \
            and not object_ref.get("apiGroup")
        kind = NAMESPACE if is_namespace else ref
        if kind is None:
            return
        namespace = "" if is_namespace else str(object_ref.get("namespace") or "")
        name = str(object_ref.get("name") or "")
        if event.get("verb") == "delete":
            if name:
                self.cluster.remove(kind.key, namespace, name)
            return
        stored: Mapping[str, Any] | None = _object_of(event.get("responseObject"), kind)
        if stored is None and request is not None and request.object is not None:
            stored = dict(request.object)
        if stored is None and is_namespace:
            stored = self._namespace_without_response(event, name)
        if stored is None:
            return  # nothing known of the new state; the old stays (documented)
        if is_namespace:
            self.cluster.add(namespace_object(_name(stored) or name, copy.deepcopy(stored)))
        else:
            self.cluster.add(_namespaced(stored, namespace or "default"))

    def _namespace_without_response(self, event: Mapping[str, Any],
                                    name: str) -> Mapping[str, Any] | None:
        sent = event.get("requestObject")
        verb = event.get("verb")
        if verb in ("create", "update"):
            return _object_of(sent, NAMESPACE)
        old = self.cluster.get_namespace(name)
        if verb == "patch" and old is not None:
            patched, _ = _apply_patch(old, sent)
            return patched
        return None


def _refused_before_reading(event: Mapping[str, Any], logged: LoggedRequest) -> bool:
    code = logged.recorded.code
    return (logged.recorded.verdict is Verdict.UNKNOWN and code is not None and code >= 400
            and event.get("requestObject") is None)


def _resource(event: Mapping[str, Any]) -> str:
    return str((event.get("objectRef") or {}).get("resource") or "")


def _code(event: Mapping[str, Any]) -> int | None:
    code = (event.get("responseStatus") or {}).get("code")
    return code if isinstance(code, int) else None


def _object_of(data: Any, ref: KindRef) -> dict[str, Any] | None:
    """``data`` when it is an object of ``ref``'s kind (not a Status, not DeleteOptions)."""
    if isinstance(data, dict) and data.get("kind") == ref.kind \
            and isinstance(data.get("metadata"), dict):
        # Not copied: each event is parsed anew, and neither the engine nor the cluster
        # changes an object in place (both copy on write).
        return data
    return None


def _namespaced(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """``obj`` with ``metadata.namespace`` set, copying only what changes (the API server
    fills it before admission; a create's requestObject may lack it)."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    if metadata.get("namespace") == namespace:
        return dict(obj)
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def _name(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return ""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _user(event: Mapping[str, Any]) -> UserInfo:
    """The user admission saw: the impersonated one when the request impersonates."""
    data = event.get("impersonatedUser") or event.get("user") or {}
    if not isinstance(data, Mapping):
        return UserInfo()
    groups = data.get("groups") or []
    return UserInfo(str(data.get("username") or ""),
                    tuple(str(g) for g in groups) if isinstance(groups, list) else (),
                    str(data.get("uid") or ""))


def _dry_run(event: Mapping[str, Any]) -> bool:
    query = parse_qs(urlsplit(str(event.get("requestURI") or "")).query)
    return "All" in query.get("dryRun", [])


def _timestamp(event: Mapping[str, Any]) -> float | None:
    for key in ("requestReceivedTimestamp", "stageTimestamp"):
        value = event.get(key)
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _apply_patch(old: Mapping[str, Any], patch: Any) -> tuple[dict[str, Any] | None, str]:
    """``old`` with ``patch`` applied, when that is unambiguous; else (None, why)."""
    if isinstance(patch, list):
        try:
            return dict(apply_raw_patch(old, patch)), ""
        except PatchError as error:
            return None, f"the JSON Patch does not apply to the replayed object ({error})"
    if not isinstance(patch, dict):
        return None, "the event holds no patch (log at level Request or RequestResponse)"
    if patch.get("apiVersion") and patch.get("kind"):
        return None, ("a server-side apply: its result depends on field ownership (level "
                      "RequestResponse records the applied object)")
    if _has_list_or_directive(patch):
        return None, ("a strategic merge patch of a list: its result depends on merge keys "
                      "(level RequestResponse records the patched object)")
    return _merge(old, patch), ""


def _has_list_or_directive(value: Any) -> bool:
    if isinstance(value, list):
        return True
    if isinstance(value, dict):
        return any(key in _STRATEGIC_KEYS or str(key).startswith("$setElementOrder/")
                   or _has_list_or_directive(item) for key, item in value.items())
    return False


def _merge(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (what a strategic merge patch without lists amounts to)."""
    merged = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = _merge({}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
