"""Shadow mode: a candidate policy set judged beside the enforced one on every admission,
never answering (docs/shadow.md).

The candidates are the policies of ``serve --shadow DIR`` and every policy (file or Policy
object) with ``spec.shadow: true``. They are judged after the enforced set has decided, on
the same request and cluster view, with what the enforced set left of the evaluation
budget and deadline: the enforced set is served first, and a shadow set never makes an
answer slower than the limits an answer already has. A candidate that does not fit what is
left fails to evaluate, and that is counted as its ``error``, never as a denial.

What each candidate would do is counted per policy (``edgewarden_shadow_decisions_total``);
where it differs from what the enforced policy of the same name did (or from nothing, for a
new policy), the difference is counted too, and a JSON line goes to the decision log. The
PolicyReports of the differences are the continuous audit's (webhook/controllers/
shadow_reports.py): they describe objects that exist, judged by the leader, whatever the
replica that saw their request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.evaluation import Engine, every_policy
from webhook.policy.model.decision import Decision, Mode, ViolationSource
from webhook.policy.model.policy import Policy, PolicySet
from webhook.policy.model.ports import ClusterView, ExceptionView
from webhook.policy.model.request import AdmissionRequest

log = logging.getLogger("edgewarden.server")
decisions = logging.getLogger("edgewarden.decisions")  # the decision log's logger

# What a policy does to one admission, in the words of the metric's ``result`` label.
ALLOW, DENY, WARN, AUDIT, PATCH, ERROR = "allow", "deny", "warn", "audit", "patch", "error"
RESULTS = (ALLOW, DENY, WARN, AUDIT, PATCH, ERROR)
_BY_MODE = {Mode.ENFORCE: DENY, Mode.WARN: WARN, Mode.AUDIT: AUDIT}


class ShadowCounter(Protocol):
    """webhook.admission.metrics.Metrics, as shadow judging uses it."""

    def count_shadow(self, policy: str, result: str) -> None: ...

    def count_shadow_difference(self, policy: str, result: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one policy did (or would do) to one admission."""

    result: str
    message: str = ""
    patch: tuple[Mapping[str, Any], ...] = ()


NOTHING = Outcome(ALLOW)


@dataclass(frozen=True, slots=True)
class Difference:
    """A candidate that would act otherwise than the enforced policy of its name."""

    policy: str
    shadow: Outcome
    enforced: Outcome


@dataclass(frozen=True, slots=True)
class ShadowSet:
    """The candidates, compiled once, with one engine per endpoint as the enforced set has.

    /validate's engine runs validations, limits and unique keys; /mutate's runs every
    mutating candidate whatever its mode (a shadow patch is only ever reported)."""

    policies: PolicySet
    validate_engine: Engine
    mutate_engine: Engine
    declared_modes: Mapping[str, Mode]

    @classmethod
    def build(cls, policies: PolicySet, bounds: Mapping[str, Any]) -> ShadowSet:
        compiled = CompiledPolicies.compile(policies)
        return cls(
            policies=policies,
            validate_engine=Engine(compiled, mutations=None, **bounds),
            mutate_engine=Engine(compiled, mutations=every_policy, validations=False, **bounds),
            declared_modes={p.name: p.mode for p in policies.policies},
        )

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.policies.policies)


def split(policies: PolicySet, shadow: PolicySet | None) -> tuple[PolicySet, PolicySet]:
    """The enforced set, and the candidates: ``shadow`` and the policies marked ``spec.shadow``
    (the reloader marks the --shadow folder's, and puts them first). A candidate's name may
    repeat an enforced one (a revision on trial); of two candidates of one name, the first
    is judged."""
    enforced = tuple(p for p in policies.policies if not p.shadow)
    candidates: dict[str, Policy] = {}
    for policy in shadow.policies if shadow is not None else ():
        candidates.setdefault(policy.name, policy)
    for policy in policies.policies:
        if policy.shadow:
            candidates.setdefault(policy.name, policy)  # the first of a name is judged
    return (
        PolicySet(enforced, sources=policies.sources, warnings=policies.warnings),
        PolicySet(tuple(candidates.values()),
                  sources=shadow.sources if shadow is not None else ()),
    )


def outcomes(decision: Decision, modes: Mapping[str, Mode]) -> dict[str, Outcome]:
    """Per policy the decision judged, what it did: its declared mode decides the word (a
    --dry-run server judges Enforce policies as Audit, yet they are meant to deny)."""
    found: dict[str, Outcome] = {name: NOTHING for name in decision.matched_policies}
    for mutation in decision.mutations:
        found[mutation.policy] = Outcome(PATCH, _describe(mutation.patch), mutation.patch)
    for violation in decision.violations:
        if violation.source is ViolationSource.ERROR:
            result = ERROR
        else:
            result = _BY_MODE[modes.get(violation.policy, violation.mode)]
        found[violation.policy] = Outcome(result, violation.message)
    for failure in decision.errors:
        if failure.ignored:  # failurePolicy Ignore: admitted, but it could not judge
            found[failure.policy] = Outcome(ERROR, failure.message)
    return found


def differences(shadow: Mapping[str, Outcome], enforced: Mapping[str, Outcome]) -> list[Difference]:
    """Candidates that would act otherwise than the enforced policy of their name."""
    found = []
    for policy, outcome in shadow.items():
        current = enforced.get(policy, NOTHING)
        if outcome.result != current.result or outcome.patch != current.patch:
            found.append(Difference(policy, outcome, current))
    return found


def judge(
    shadow: ShadowSet,
    endpoint: str,
    request: AdmissionRequest,
    enforced: Decision,
    enforced_modes: Mapping[str, Mode],
    *,
    cluster: ClusterView,
    exceptions: ExceptionView,
    started: float | None,
    metrics: ShadowCounter,
) -> list[Difference]:
    """Judge ``request`` with the candidates of ``endpoint``, count and log what differs.

    Never raises: the answer is already decided, and a candidate's bug must not become the
    request's error (it is logged and counted as that policy's ``error``)."""
    engine = shadow.validate_engine if endpoint == "validate" else shadow.mutate_engine
    try:
        decision = engine.evaluate(request, cluster, exceptions, spent=enforced.spent,
                                   started=started)
    except Exception:
        log.exception("shadow: judging %s %s/%s failed", request.kind, request.namespace,
                      request.name)
        for name in shadow.names:
            metrics.count_shadow(name, ERROR)
        return []
    would = outcomes(decision, shadow.declared_modes)
    for policy, outcome in would.items():
        metrics.count_shadow(policy, outcome.result)
    found = differences(would, outcomes(enforced, enforced_modes))
    for difference in found:
        metrics.count_shadow_difference(difference.policy, difference.shadow.result)
        _log(endpoint, request, difference)
    return found


def _log(endpoint: str, request: AdmissionRequest, difference: Difference) -> None:
    """One line per difference, shaped as the decision log's (never the object)."""
    if not decisions.isEnabledFor(logging.INFO):
        return
    record = {
        "event": "shadow_difference",
        "endpoint": endpoint,
        "policy": difference.policy,
        "kind": request.kind,
        "namespace": request.namespace,
        "name": request.name,
        "uid": request.uid,
        "operation": request.operation,
        "shadow": difference.shadow.result,
        "enforced": difference.enforced.result,
        "message": difference.shadow.message or difference.enforced.message,
    }
    decisions.info("%s", orjson.dumps(record).decode())


def _describe(patch: tuple[Mapping[str, Any], ...]) -> str:
    return "would patch: " + "; ".join(f"{op.get('op')} {op.get('path')}" for op in patch)
