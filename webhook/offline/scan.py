"""Judging objects with the engine, offline: ``check`` (manifests) and ``audit`` (a cluster).

``check`` replays the input as the API server would see it: each Service/Ingress is a
CREATE, in input order, and each allowed object then exists, so the third LoadBalancer of
one namespace in a Helm render is denied exactly as it would be at ``kubectl apply``.

With a cluster state (``check --cluster-state``) the state's objects exist before the first
manifest: they count toward limits, their Namespaces give labels, and a manifest naming an
object the state holds is judged as the UPDATE ``kubectl apply`` would send.

``audit`` judges what already exists. Validations run per object, as a CREATE. Limits do
not: every existing object is already in the count, so judging each one as a CREATE would
deny them all once a namespace is at its cap. Instead a limit is reported once per
namespace, when the namespace holds more counted objects than the cap allows there
(lowering a cap, or a cap added after the fact) — see docs/reports.md.

PolicyExceptions are judged by the engine, at ``now`` (the caller's clock): what an active
one admits is an ``exempt`` finding naming it, exactly as admission would answer at that
time; an expired one is ignored.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.cluster.memory import MemoryCluster
from webhook.offline.exceptions import exception_statuses
from webhook.offline.ingress_versions import ingress_as_v1, is_old_ingress
from webhook.offline.manifests import Location, Manifest
from webhook.offline.progress import NO_PROGRESS, Progress
from webhook.offline.results import (
    Finding,
    LimitStatus,
    ObjectResult,
    Outcome,
    Resource,
    ScanReport,
)
from webhook.policy.blocks.counters import cap_in_namespace
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import Decision, ViolationSource
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet, first_covering
from webhook.policy.model.kinds import key_of_object
from webhook.policy.model.namespaces import namespace_object
from webhook.policy.model.policy import Policy, PolicySet
from webhook.policy.model.ports import ExceptionView
from webhook.policy.model.request import make_request

NAMESPACE = "Namespace"
DEFAULT_NAMESPACE = "default"


def check_manifests(
    manifests: Iterable[Manifest],
    policies: PolicySet,
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
    existing: Iterable[Manifest] = (),
    progress: Progress = NO_PROGRESS,
    engine: Engine | None = None,
    exceptions: ExceptionSet = NO_EXCEPTIONS,
    now: float | None = None,
) -> ScanReport:
    """Judge every Service/Ingress of ``manifests`` in order, over ``existing`` objects, as
    they would be admitted at ``now`` (PolicyExceptions expire).

    ``engine`` (over ``policies``) saves compiling the set again when one caller checks
    many manifests.
    """
    report = ScanReport("check", policies, judged_at=now)
    manifests = as_served(manifests, report)
    judged_kinds = {ref.key for ref in policies.kinds()}
    existing = [
        Manifest(with_namespace(m.obj, m.namespace or DEFAULT_NAMESPACE), m.location)
        if key_of_object(m.obj) in judged_kinds
        else m
        for m in as_served(existing, report)
    ]
    engine = engine or Engine(policies)
    # The manifests' own Namespaces come last, so they win: applying them updates the state's.
    report.namespaces = namespace_objects([*existing, *manifests], namespace_labels or {})
    cluster = MemoryCluster(
        [copy.deepcopy(dict(ns)) for ns in report.namespaces.values()]
        + [copy.deepcopy(dict(m.obj)) for m in existing if key_of_object(m.obj) in judged_kinds]
    )
    progress.begin(f"judging {len(manifests)} objects", len(manifests))
    for manifest in manifests:
        progress.advance()
        if manifest.kind == NAMESPACE:
            continue
        key = key_of_object(manifest.obj)
        if key not in judged_kinds:
            report.skipped[manifest.kind] += 1
            _note_ungoverned_version(manifest, policies, report)
            continue
        namespace = manifest.namespace or default_namespace
        if namespace not in report.namespaces:
            # Unknown namespaces are taken as existing with no labels, as `kubectl apply`
            # into a namespace created elsewhere would find them.
            report.namespaces[namespace] = bare_namespace(namespace)
            cluster.add(copy.deepcopy(dict(report.namespaces[namespace])))
        old = cluster.get(key, namespace, manifest.name)
        result = judge(engine, manifest, namespace, cluster, old=old, exceptions=exceptions,
                       now=now)
        report.objects.append(result)
        if result.allowed:
            cluster.add(copy.deepcopy(dict(result.object)))
    report.exceptions = exception_statuses(exceptions, report, now)
    return report


def audit_objects(
    objects: Iterable[Manifest],
    policies: PolicySet,
    progress: Progress = NO_PROGRESS,
    *,
    exceptions: ExceptionSet = NO_EXCEPTIONS,
    now: float | None = None,
) -> ScanReport:
    """Judge what exists at ``now``: validations per object, limits per namespace."""
    progress.begin("indexing the cluster")
    report = ScanReport("audit", policies, judged_at=now)
    judged_kinds = {ref.key for ref in policies.kinds()}
    objects = [
        Manifest(with_namespace(m.obj, DEFAULT_NAMESPACE), m.location)
        if key_of_object(m.obj) in judged_kinds and m.namespace is None
        else m
        for m in as_served(objects, report)
    ]
    engine = Engine(policies)
    report.namespaces = namespace_objects(objects, {})
    judged = [m for m in objects if key_of_object(m.obj) in judged_kinds]
    for manifest in objects:
        if manifest.kind != NAMESPACE and key_of_object(manifest.obj) not in judged_kinds:
            report.skipped[manifest.kind] += 1
            _note_ungoverned_version(manifest, policies, report)
    for manifest in judged:
        name = manifest.namespace or DEFAULT_NAMESPACE
        report.namespaces.setdefault(name, bare_namespace(name))
    cluster = MemoryCluster(
        [copy.deepcopy(dict(ns)) for ns in report.namespaces.values()]
        + [copy.deepcopy(dict(m.obj)) for m in judged]
    )
    progress.begin(f"judging {len(judged)} objects", len(judged))
    for manifest in judged:
        namespace = manifest.namespace or DEFAULT_NAMESPACE
        report.objects.append(judge(engine, manifest, namespace, cluster, limits=False,
                                    exceptions=exceptions, now=now))
        progress.advance()
    progress.begin("counting toward limits")
    report.limits = limit_statuses(engine, policies, cluster, report.namespaces,
                                   exceptions=exceptions, now=now)
    located = {m.name: m.location for m in objects if m.kind == NAMESPACE}
    report.namespace_findings = [
        over_limit_finding(
            status, report.namespaces[status.namespace], located.get(status.namespace),
            exceptions=exceptions, now=now,
        )
        for status in report.limits
        if status.over or status.over_but_exempted
    ]
    report.exceptions = exception_statuses(exceptions, report, now)
    return report


def as_served(manifests: Iterable[Manifest], report: ScanReport | None = None) -> list[Manifest]:
    """The manifests as a webhook with ``matchPolicy: Equivalent`` receives them: old Ingress
    versions converted to networking.k8s.io/v1 (webhook/offline/ingress_versions.py), each
    conversion noted in ``report``."""
    served: list[Manifest] = []
    converted: Counter[str] = Counter()
    for manifest in manifests:
        if is_old_ingress(manifest.obj):
            converted[str(manifest.obj.get("apiVersion"))] += 1
            manifest = Manifest(ingress_as_v1(manifest.obj), manifest.location)
        served.append(manifest)
    if report is not None:
        for version, count in sorted(converted.items()):
            report.notes.append(
                f"{count} Ingress object(s) of {version} judged as networking.k8s.io/v1, as "
                "the API server converts them for a webhook with matchPolicy: Equivalent"
            )
    return served


def undefined_namespaces(
    manifests: Iterable[Manifest],
    policies: PolicySet,
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
    existing: Iterable[Manifest] = (),
) -> dict[str, list[Manifest]]:
    """The namespaces that objects to judge go into but nothing defines, with those objects.

    Defined means a Namespace among ``manifests`` or ``existing`` (a cluster state), or
    labels given for it. A policy's namespaceSelector, its namespaceObject expressions and
    a limit's per-namespace cap all read the namespace: judging an object into one whose
    labels are unknown would pass it for lack of context (``check`` refuses that).
    """
    manifests = as_served(manifests)
    judged_kinds = {ref.key for ref in policies.kinds()}
    defined = set(namespace_labels or {})
    defined |= {m.name for m in (*existing, *manifests) if m.kind == NAMESPACE}
    missing: dict[str, list[Manifest]] = {}
    for manifest in manifests:
        if manifest.kind == NAMESPACE or key_of_object(manifest.obj) not in judged_kinds:
            continue
        namespace = manifest.namespace or default_namespace
        if namespace not in defined:
            missing.setdefault(namespace, []).append(manifest)
    return missing


def _note_ungoverned_version(manifest: Manifest, policies: PolicySet, report: ScanReport) -> None:
    """Say so when a skipped object is of a kind the policies govern, in another group: the
    user most likely meant it to be judged (a typo in apiVersion, a kind of another API)."""
    governed = sorted({ref.api_version for ref in policies.kinds() if ref.kind == manifest.kind})
    if not governed:
        return
    where = f" ({manifest.location})" if manifest.location is not None else ""
    report.notes.append(
        f"{manifest.kind} {manifest.name}{where} not judged: its apiVersion "
        f"{manifest.obj.get('apiVersion')} is not one the policies govern "
        f"({', '.join(governed)})"
    )


def judge(
    engine: Engine,
    manifest: Manifest,
    namespace: str,
    cluster: MemoryCluster,
    *,
    limits: bool = True,
    old: Mapping[str, Any] | None = None,
    exceptions: ExceptionView = NO_EXCEPTIONS,
    now: float | None = None,
) -> ObjectResult:
    """One CREATE of ``manifest`` into ``namespace`` (an UPDATE of ``old`` when given);
    ``limits=False`` drops limit verdicts."""
    obj = with_namespace(manifest.obj, namespace)
    request = (
        make_request("CREATE", obj, namespace=namespace, judged_at=now)
        if old is None
        else make_request("UPDATE", obj, with_namespace(old, namespace), namespace=namespace,
                          judged_at=now)
    )
    decision = engine.evaluate(request, cluster, exceptions)
    return object_result(engine, decision, obj, manifest.location, limits=limits)


def object_result(
    engine: Engine,
    decision: Decision,
    obj: Mapping[str, Any],
    location: Location | None,
    *,
    limits: bool = True,
) -> ObjectResult:
    """The findings of one decision about ``obj``, in the words of the reports (also what
    ``replay`` makes of a request rebuilt from an audit log)."""
    resource = resource_of(obj, location)
    findings: list[Finding] = []
    touched: set[str] = set()
    for violation in decision.violations:
        if not limits and violation.source is ViolationSource.LIMIT:
            continue
        touched.add(violation.policy)
        findings.append(
            Finding(
                resource,
                violation.policy,
                violation.mode,
                Outcome.for_mode(violation.mode),
                violation.message,
                violation.source.value,
            )
        )
    for mutation in decision.mutations:
        touched.add(mutation.policy)
        findings.append(
            Finding(
                resource,
                mutation.policy,
                _policy(engine.policies, mutation.policy).mode,
                Outcome.PATCH,
                "would patch: " + describe_patch(mutation.patch),
                "mutation",
                mutation.patch,
            )
        )
    for exemption in decision.exemptions:
        if not limits and exemption.source is ViolationSource.LIMIT:
            continue
        touched.add(exemption.policy)
        findings.append(
            Finding(resource, exemption.policy, exemption.mode, Outcome.EXEMPT,
                    exemption.message, exemption.source.value, exception=exemption.exception,
                    would=exemption.would)
        )
    for name in decision.matched_policies:
        if name not in touched:
            policy = _policy(engine.policies, name)
            findings.append(Finding(resource, name, policy.mode, Outcome.PASS, "", "match"))
    # Policy load order, so every report lists an object's findings the same way.
    order = {policy.name: i for i, policy in enumerate(engine.policies.policies)}
    findings.sort(key=lambda f: order.get(f.policy, len(order)))
    allowed = not any(f.outcome is Outcome.DENY for f in findings)
    mutated = decision.mutated_object if decision.mutated_object is not None else obj
    return ObjectResult(resource, allowed, findings, mutated)


def limit_statuses(
    engine: Engine,
    policies: PolicySet,
    cluster: MemoryCluster,
    namespaces: Mapping[str, Mapping[str, Any]],
    *,
    exceptions: ExceptionView = NO_EXCEPTIONS,
    now: float | None = None,
) -> list[LimitStatus]:
    """For every limit policy, kind and namespace where it applies: the count, the cap, and
    the counted objects an active exception exempts from the policy."""
    statuses: list[LimitStatus] = []
    for policy in policies.policies:
        for kind in sorted(policy.match.kinds):
            counter = engine.counter_for(policy, kind)
            if counter is None:
                continue
            for name in sorted(namespaces):
                cap = cap_in_namespace(policy, namespaces[name])
                if cap is None:
                    continue
                names = tuple(sorted(cluster.counted_names(name, counter)))
                exempted = tuple(
                    n for n in names
                    if _exempting(exceptions, policy.name, cluster, kind, name, n, now)
                )
                statuses.append(LimitStatus(policy.name, policy.mode, name, kind, len(names),
                                            cap, names, exempted))
    return statuses


def _exempting(exceptions: ExceptionView, policy: str, cluster: MemoryCluster, kind: str,
               namespace: str, name: str, now: float | None) -> bool:
    candidates = exceptions.candidates(namespace, policy)
    if not candidates:
        return False
    obj = cluster.get(kind, namespace, name) or {}
    labels = (obj.get("metadata") or {}).get("labels")
    return first_covering(candidates, now, kind, name, labels) is not None


def over_limit_finding(
    status: LimitStatus,
    namespace: Mapping[str, Any],
    location: Location | None = None,
    *,
    exceptions: ExceptionView = NO_EXCEPTIONS,
    now: float | None = None,
) -> Finding:
    resource = resource_of(namespace, location)
    noun = status.kind + ("s" if status.count != 1 else "")
    message = (
        f"namespace {status.namespace} has {status.count} counted {noun} "
        f"({', '.join(status.names)}), over the cap of {status.max}"
    )
    if not status.over:
        # Over only by what exceptions admit: say which, as an exemption of the namespace.
        found = [e for e in exceptions.candidates(status.namespace, status.policy)
                 if e.active_at(now)]
        admitted = ", ".join(status.exempted)
        return Finding(resource, status.policy, status.mode, Outcome.EXEMPT,
                       f"{message}; PolicyExceptions admit {admitted}", "limit",
                       exception=found[0] if found else None,
                       would=Outcome.for_mode(status.mode).value)
    return Finding(
        resource, status.policy, status.mode, Outcome.for_mode(status.mode), message, "limit"
    )


def namespace_objects(
    manifests: Iterable[Manifest], labels: Mapping[str, Mapping[str, str]]
) -> dict[str, Mapping[str, Any]]:
    """Namespaces from the input, with ``--namespace-labels`` merged over their own labels."""
    found: dict[str, Mapping[str, Any]] = {}
    for manifest in manifests:
        if manifest.kind == NAMESPACE:
            # The API server sets the name label on every namespace; selectors may rely on it.
            found[manifest.name] = namespace_object(
                manifest.name, copy.deepcopy(dict(manifest.obj))
            )
    for name, extra in labels.items():
        namespace = dict(found.get(name) or bare_namespace(name))
        metadata = dict(namespace.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **extra}
        namespace["metadata"] = metadata
        found[name] = namespace
    return found


def bare_namespace(name: str) -> dict[str, Any]:
    """A namespace known only by its name, labelled as the API server labels it."""
    return dict(namespace_object(name, None))


def with_namespace(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """A copy with ``metadata.namespace`` set, as the API server fills it before admission."""
    copied = copy.deepcopy(dict(obj))
    metadata = copied.setdefault("metadata", {})
    metadata["namespace"] = namespace
    return copied


def resource_of(obj: Mapping[str, Any], location: Location | None) -> Resource:
    metadata = obj.get("metadata") or {}
    return Resource(
        kind=str(obj.get("kind") or ""),
        name=str(metadata.get("name") or metadata.get("generateName") or ""),
        namespace=str(metadata.get("namespace") or ""),
        api_version=str(obj.get("apiVersion") or "v1"),
        uid=str(metadata.get("uid") or ""),
        location=location,
    )


def describe_patch(patch: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for operation in patch:
        text = f"{operation.get('op')} {operation.get('path')}"
        if "value" in operation:
            text += " = " + json.dumps(operation["value"], sort_keys=True)
        parts.append(text)
    return "; ".join(parts)


def _policy(policies: PolicySet, name: str) -> Policy:
    policy = policies.get(name)
    if policy is None:  # the engine only names policies of its own set
        raise LookupError(f"engine reported unknown policy {name!r}")
    return policy
