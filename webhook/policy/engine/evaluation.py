"""The decision engine: a pure function of (policies, request, cluster view) -> Decision.

Order of work mirrors the API server: mutating policies run first, in load order, each
seeing the object as the previous ones left it; then validations and limits judge that
final object. Cheap checks (kind, operation, exclusions, selectors) run before any CEL, and
the CEL context for a request is built once, on first need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cel

from webhook.policy.cel.expression import CelEvaluationError, CelExpression
from webhook.policy.engine import ownership
from webhook.policy.engine.budget import DEFAULT_BUDGET, Guard
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.context import RequestContext
from webhook.policy.engine.limits import (
    LimitCounter,
    PolicyEvaluationError,
    checked_max,
    max_expression_failed,
)
from webhook.policy.engine.patches import PatchError, add_absent_annotations, apply_raw_patch
from webhook.policy.engine.ports import ClusterView, ExceptionView, ObjectCounter
from webhook.policy.engine.unique import UniqueIndex, UniqueKeysError
from webhook.policy.model.decision import (
    AppliedMutation,
    Decision,
    EvaluationFailure,
    Exemption,
    FailurePolicy,
    KeyClaim,
    LimitClaim,
    Mode,
    Violation,
    ViolationSource,
)
from webhook.policy.model.exceptions import NO_EXCEPTIONS, PolicyException, first_covering
from webhook.policy.model.objects import labels_of
from webhook.policy.model.policy import (
    InternalLoadBalancer,
    Limit,
    Policy,
    PolicySet,
    SetAnnotations,
    Unique,
    Validation,
)
from webhook.policy.model.request import AdmissionRequest

PolicyFilter = Callable[[Policy], bool]
_NO_VARIABLES: Mapping[str, CelExpression] = {}


def every_policy(_: Policy) -> bool:
    return True


class Engine:
    """Judges admissions against one compiled policy set. Thread-safe, no I/O.

    ``force_audit`` turns every Enforce into Audit (the server's ``--dry-run``): nothing is
    denied, but every violation is still reported. ``mutations`` chooses the mutating
    policies that run (None: no mutation phase) and ``validations`` whether validations and
    limits run, so the server's endpoints are views over one compiled set.
    """

    def __init__(
        self,
        policies: PolicySet | CompiledPolicies,
        *,
        force_audit: bool = False,
        mutations: PolicyFilter | None = every_policy,
        validations: bool = True,
        budget: float = DEFAULT_BUDGET,
        deadline: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(policies, CompiledPolicies):
            policies = CompiledPolicies.compile(policies)
        compiled = self.compiled = policies
        self.policies = compiled.source
        self.force_audit = force_audit
        self.budget = budget
        # A wall-clock backstop (the server's): past it, the remaining policies fail as
        # their failurePolicy says. Offline callers leave it off, so their verdicts never
        # depend on the machine's load.
        self.deadline = deadline
        self.clock = clock
        select = mutations
        self._mutating = {
            kind: tuple(p for p in found if p.mutations and select is not None and select(p))
            for kind, found in compiled.by_kind.items()
        }
        self._validating = {
            kind: tuple(p for p in found if p.validates and validations)
            for kind, found in compiled.by_kind.items()
        }

    def counters(self) -> list[ObjectCounter]:
        """The limit counters the cluster view must index (one per limit policy and kind)."""
        return list(self.compiled.counters.values())

    def key_indexes(self) -> list[UniqueIndex]:
        """The key indexes the cluster view must keep (one per ``unique`` policy)."""
        return list(self.compiled.unique_indexes.values())

    def counter_for(self, policy: Policy, kind: str) -> LimitCounter | None:
        return self.compiled.counter(policy, kind)

    def mode_of(self, policy: Policy) -> Mode:
        if self.force_audit and policy.mode is Mode.ENFORCE:
            return Mode.AUDIT
        return policy.mode

    # -- evaluation -------------------------------------------------------------------

    def evaluate(
        self,
        request: AdmissionRequest,
        cluster: ClusterView,
        exceptions: ExceptionView = NO_EXCEPTIONS,
        *,
        spent: float = 0.0,
        started: float | None = None,
    ) -> Decision:
        """Judge ``request``; ``exceptions`` may admit what a policy would act on (asked only
        then, so a set without exceptions costs nothing).

        ``spent`` and ``started`` continue an evaluation that already ran on this request (a
        shadow set after the enforced one): the budget left is what it did not spend, and the
        deadline counts from when it started."""
        decision = Decision(spent=spent)
        mutating = self._mutating.get(request.key, ())
        validating = self._validating.get(request.key, ())
        if not mutating and not validating:
            return decision
        state = RequestContext(
            request, cluster, self.compiled.bindings, self.compiled.memo, exceptions
        )
        state.spent = spent
        if started is None:
            started = self.clock() if self.clock is not None else 0.0
        for policy in mutating:
            if self._late(started, policy, state, decision):
                continue
            try:
                if self._applies(policy, state, decision):
                    self._mutate(policy, state, decision)
            except Exception as error:  # see _unexpected
                self._unexpected(policy, state, decision, error)
        for policy in validating:
            if self._late(started, policy, state, decision):
                continue
            try:
                if self._applies(policy, state, decision):
                    self._validate(policy, state, decision)
            except Exception as error:  # see _unexpected
                self._unexpected(policy, state, decision, error)
        # A policy that both mutates and validates matched in both phases: name it once.
        decision.matched_policies = list(dict.fromkeys(decision.matched_policies))
        if state.working_copy:
            decision.mutated_object = dict(state.object or {})
        decision.allowed = not any(v.denies for v in decision.violations)
        decision.spent = state.spent
        return decision

    def _applies(self, policy: Policy, state: RequestContext, decision: Decision) -> bool:
        request = state.request
        match = policy.match
        if request.operation not in match.operations:
            return False
        exclude = match.exclude
        if request.namespace in exclude.namespaces or request.user.username in exclude.usernames:
            return False
        if exclude.groups and not exclude.groups.isdisjoint(request.user.groups):
            return False
        if policy.name in self.compiled.reads_cluster and not state.cluster.synced:
            # Answering from an empty cache would admit what the cluster state forbids.
            self._failed(policy, state, decision, "the cluster cache is not current (not "
                         "synced yet, or stale past its bound), and this policy reads cluster "
                         "state (namespaces or counted objects)")
            return False
        if match.namespace_selector is not None and not match.namespace_selector.matches(
            state.namespace_labels
        ):
            return False
        if match.object_selector is not None and not self._object_selected(policy, state):
            return False
        guard = self.compiled.condition_guards.get(policy.name)
        if guard is not None and not self._affordable(policy, guard, state, decision):
            return False
        for condition in policy.match_conditions:
            context = state.context_for(_NO_VARIABLES, condition.expression)
            try:
                if not condition.expression.evaluate_bool(context):
                    return False
            except CelEvaluationError as error:
                self._failed(policy, state, decision,
                             f"matchCondition {condition.name!r} failed: {error}")
                return False
        guard = self.compiled.guards.get(policy.name)
        if guard is not None and not self._affordable(policy, guard, state, decision):
            return False
        decision.matched_policies.append(policy.name)
        return True

    def _affordable(
        self, policy: Policy, guard: Guard, state: RequestContext, decision: Decision
    ) -> bool:
        """False (and the policy failed) when judging this input would exceed the budget."""
        if state.within_assumptions(self.compiled.guard_walks.get(state.request.key, {})):
            return True
        values = state.root_values()
        oversize = guard.oversize(values)
        if oversize is None:
            return True  # within the sizes the load-time estimate already bounded
        cost = guard.cost(values, limit=self.budget - state.spent)
        if state.spent + cost <= self.budget:
            state.spent += cost
            return True
        earlier = (f", after {state.spent / 1000:,.0f} ms spent on other policies"
                   if state.spent else "")
        self._failed(
            policy, state, decision,
            f"{oversize.where} holds {oversize.size:,} items: judging it would take more "
            f"than the evaluation budget of {self.budget / 1000:,.0f} ms of CEL work (at "
            f"least {cost / 1000:,.0f} ms{earlier})",
        )
        return False

    @staticmethod
    def _object_selected(policy: Policy, state: RequestContext) -> bool:
        # As in Kubernetes: an UPDATE matches when either the new or the old object matches.
        selector = policy.match.object_selector
        assert selector is not None
        for candidate in (state.object, state.request.old_object):
            if candidate is not None and selector.matches(labels_of(candidate)):
                return True
        return False

    def _late(
        self, started: float, policy: Policy, state: RequestContext, decision: Decision
    ) -> bool:
        if self.deadline is None or self.clock is None:
            return False
        elapsed = self.clock() - started
        if elapsed <= self.deadline:
            return False
        self._failed(policy, state, decision, f"the evaluation deadline of "
                     f"{self.deadline * 1000:,.0f} ms passed ({elapsed * 1000:,.0f} ms) "
                     "before this policy was judged")
        return True

    def _unexpected(
        self, policy: Policy, state: RequestContext, decision: Decision, error: Exception
    ) -> None:
        """An input no one foresaw (or an engine bug) fails this policy alone, as its
        failurePolicy says, instead of failing the whole request as an internal error."""
        self._failed(
            policy, state, decision, f"unexpected {type(error).__name__} while evaluating"
        )

    def _failed(
        self, policy: Policy, state: RequestContext, decision: Decision, detail: str
    ) -> None:
        """An evaluation error: Fail reports it as a violation in the policy's mode."""
        message = f"policy could not be evaluated: {detail}"
        ignored = policy.failure_policy is FailurePolicy.IGNORE
        decision.errors.append(EvaluationFailure(policy.name, message, ignored))
        if not ignored:
            self._record(policy, state, decision, message, ViolationSource.ERROR)

    def _record(
        self,
        policy: Policy,
        state: RequestContext,
        decision: Decision,
        message: str,
        source: ViolationSource,
    ) -> None:
        mode = self.mode_of(policy)
        if policy.unique is not None and source in (ViolationSource.UNIQUE,
                                                    ViolationSource.ERROR):
            # What another namespace holds is not this namespace's to waive, and a unique
            # policy that failed did not check ownership at all: no exception applies.
            exception = _covering(policy, state)
            if exception is not None:
                message += (f" ({exception.describe()} does not apply: an exception never "
                            "settles who owns a key held or reserved in another namespace)")
        elif self._exempted(policy, state, decision, mode, message, source):
            return
        decision.violations.append(Violation(policy.name, mode, message, source))
        if mode is Mode.WARN:
            decision.warnings.append(f"{policy.name}: {message}")
        elif mode is Mode.AUDIT:
            previous = decision.audit_annotations.get(policy.name)
            decision.audit_annotations[policy.name] = (
                f"{previous}; {message}" if previous else message
            )

    @staticmethod
    def _exempted(
        policy: Policy,
        state: RequestContext,
        decision: Decision,
        mode: Mode,
        message: str,
        source: ViolationSource,
    ) -> bool:
        """True when a PolicyException admits what ``policy`` would do; the decision then
        carries the exemption, a warning naming it, and an audit annotation."""
        exception = _covering(policy, state)
        if exception is None:
            return False
        exemption = Exemption(policy.name, mode, message, source, exception)
        decision.exemptions = (*decision.exemptions, exemption)
        decision.warnings.append(exemption.warning())
        decision.audit_annotations[f"{policy.name}.exception"] = exemption.annotation()
        return True

    # -- mutations -----------------------------------------------------------------------

    def _mutate(self, policy: Policy, state: RequestContext, decision: Decision) -> None:
        if state.object is None:
            return
        obj = state.object
        ops: list[dict[str, Any]] = []
        try:
            for mutation in policy.mutations:
                if isinstance(mutation, SetAnnotations):
                    obj, added = add_absent_annotations(obj, mutation.annotations)
                elif isinstance(mutation, InternalLoadBalancer):
                    key, value = mutation.annotation
                    obj, added = add_absent_annotations(obj, {key: value})
                else:
                    obj = apply_raw_patch(obj, mutation.operations)
                    added = [dict(op) for op in mutation.operations]
                ops.extend(added)
        except PatchError as error:
            # Nothing of this policy's mutations is kept: the object is as it was before.
            self._failed(policy, state, decision, f"mutation failed: {error}")
            return
        if ops and self._exempted(
            policy, state, decision, self.mode_of(policy),
            "would patch: " + _describe_patch(ops), ViolationSource.MUTATION,
        ):
            return  # as Kyverno's exceptions do: an exempted object is not mutated either
        if ops:
            decision.patch.extend(ops)
            decision.mutations.append(AppliedMutation(policy.name, tuple(ops)))
            state.replace_object(obj)

    # -- validations and limits ------------------------------------------------------------

    def _validate(self, policy: Policy, state: RequestContext, decision: Decision) -> None:
        variables = self.compiled.variables[policy.name]
        try:
            for index, validation in enumerate(policy.validations):
                context = state.context_for(variables, validation.expression)
                try:
                    passed = validation.expression.evaluate_bool(context)
                except CelEvaluationError as error:
                    raise PolicyEvaluationError(
                        f"expression `{validation.expression.source}` failed: "
                        + state.explain(str(error))
                    ) from None
                if not passed:
                    expressive = self._message_affordable(policy, index, state)
                    message = _message(validation, state, variables, expressive)
                    self._record(policy, state, decision, message, ViolationSource.VALIDATION)
                    break  # like ValidatingAdmissionPolicy: the first failing validation speaks
            if policy.limit is not None:
                self._check_limit(policy, policy.limit, state, decision)
            if policy.unique is not None:
                self._check_unique(policy, policy.unique, state, decision)
        except PolicyEvaluationError as error:
            self._failed(policy, state, decision, str(error))

    def _message_affordable(self, policy: Policy, index: int, state: RequestContext) -> bool:
        """Whether a messageExpression fits what is left of the budget on this input."""
        guard = self.compiled.guards.get(policy.name)
        if guard is None:
            return True
        values = state.root_values()
        if guard.oversize(values) is None:
            return True
        cost = guard.message_cost(index, values)
        if state.spent + cost > self.budget:
            return False
        state.spent += cost
        return True

    def _check_limit(
        self, policy: Policy, limit: Limit, state: RequestContext, decision: Decision
    ) -> None:
        request = state.request
        if request.operation not in ("CREATE", "UPDATE") or state.object is None:
            return  # DELETE only frees room; CONNECT has no object
        counter = self.compiled.counters[(policy.name, request.key)]
        variables = self.compiled.variables[policy.name]
        if not _counts(limit, state.context_for(variables, limit.where), state):
            return
        old = request.old_object if request.operation == "UPDATE" else None
        if old is not None and counter.counts(old):
            return  # already counted: lowering a cap must never freeze existing objects
        maximum = _limit_max(limit, state, variables)
        names = state.cluster.counted_names(request.namespace, counter)
        current = len(names) - (1 if request.name in names else 0)
        if current >= maximum:
            what = limit.message or f"at most {maximum} {request.kind} objects may count here"
            self._record(
                policy,
                state,
                decision,
                f"{what} (namespace {request.namespace} has {current} of {maximum})",
                ViolationSource.LIMIT,
            )
            return
        decision.limit_claims.append(
            LimitClaim(policy.name, counter.key, request.key, request.namespace, request.name,
                       maximum)
        )

    def _check_unique(
        self, policy: Policy, unique: Unique, state: RequestContext, decision: Decision
    ) -> None:
        request = state.request
        if request.operation not in ("CREATE", "UPDATE") or state.object is None:
            return  # DELETE only frees keys; CONNECT has no object
        index = self.compiled.unique_indexes[policy.name]
        try:
            keys = index.evaluate(state.object)
        except UniqueKeysError as error:
            raise PolicyEvaluationError(state.explain(str(error))) from None
        if request.operation == "UPDATE" and request.old_object is not None:
            keys -= index.keys_of(request.old_object)  # keeping its own keys is fine
        verdict = ownership.judge(index, keys, request.namespace, state.cluster)
        if verdict.conflicts:
            what = unique.message or "already held in another namespace"
            self._record(policy, state, decision, f"{what} ({verdict.detail()})",
                         ViolationSource.UNIQUE)
            return
        # Admitted over a squatter the grant overrides: say who still serves it.
        decision.warnings.extend(f"{policy.name}: {warning}" for warning in verdict.warnings)
        decision.key_claims.extend(
            KeyClaim(policy.name, index.key, key, request.key, request.namespace, request.name)
            for key in sorted(keys)
        )


def _covering(policy: Policy, state: RequestContext) -> PolicyException | None:
    """The active PolicyException that covers this request for ``policy``, if any."""
    request = state.request
    candidates = state.exceptions.candidates(request.namespace, policy.name)
    if not candidates:
        return None
    subject = state.object if state.object is not None else request.old_object
    labels = ((subject or {}).get("metadata") or {}).get("labels")
    return first_covering(candidates, request.judged_at, request.key, request.name, labels)


def _counts(limit: Limit, context: cel.Context, state: RequestContext) -> bool:
    if limit.where is None:
        return True
    try:
        return limit.where.evaluate_bool(context)
    except CelEvaluationError as error:
        raise PolicyEvaluationError(
            f"limit.where `{limit.where.source}` failed: {state.explain(str(error))}"
        ) from None


def _limit_max(limit: Limit, state: RequestContext, variables: Mapping[str, CelExpression]) -> int:
    if limit.max_expression is None:
        assert limit.max is not None
        return limit.max
    try:
        value = state.evaluate(limit.max_expression, variables)
    except CelEvaluationError as error:
        raise max_expression_failed(limit, state.explain(str(error))) from None
    return checked_max(limit, value)


def _message(
    validation: Validation,
    state: RequestContext,
    variables: Mapping[str, CelExpression],
    expressive: bool = True,
) -> str:
    """The violation's message: messageExpression (when ``expressive``: affordable), else
    message, else the expression itself."""
    if validation.message_expression is not None and expressive:
        try:
            context = state.context_for(variables, validation.message_expression)
            text = validation.message_expression.evaluate(context)
            if isinstance(text, str) and text.strip():
                return " ".join(text.split())
        except (CelEvaluationError, PolicyEvaluationError):
            pass  # as in Kubernetes: fall back to message, then to the expression
    if validation.message:
        return " ".join(str(validation.message).split())
    return f"failed expression: {validation.expression.source}"


def _describe_patch(ops: list[dict[str, Any]]) -> str:
    return "; ".join(f"{op.get('op')} {op.get('path')}" for op in ops)
