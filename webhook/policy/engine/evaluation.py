"""The decision engine: a pure function of (policies, request, cluster view) -> Decision.

Order of work mirrors the API server: mutating policies run first, in load order, each
seeing the object as the previous ones left it; then the validating blocks judge that final
object. Policies are indexed by (kind, operation) at build, so a request none of them
matches costs one look-up; for the rest, cheap checks (exclusions, selectors) run before
any CEL, and the CEL context for a request is built once, on first need. The engine knows
no block by name: it runs each policy's compiled blocks (webhook/policy/blocks) through a
Run, and turns what they report into one Decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webhook.policy.blocks.protocol import Compiled, CompiledBlock, PolicyEvaluationError
from webhook.policy.cel.expression import (
    Activation,
    CelEvaluationError,
    CelExpression,
    cel_type_name,
)
from webhook.policy.engine.budget import DEFAULT_BUDGET, Guard
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.context import RequestContext
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
from webhook.policy.model.policy import ALL_OPERATIONS, Policy, PolicySet
from webhook.policy.model.ports import ClusterView, ExceptionView, KeyIndex, ObjectCounter
from webhook.policy.model.request import AdmissionRequest
from webhook.policy.model.selectors import LabelSelector

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
        # Each policy's namespaceSelector, equal ones made one object: a request judges each
        # distinct selector once (RequestContext.namespace_selected), not once per policy.
        canonical: dict[LabelSelector, LabelSelector] = {}
        self._namespace_selectors: dict[str, LabelSelector] = {}
        for found in compiled.by_kind.values():
            for policy in found:
                chosen = policy.match.namespace_selector
                if chosen is not None:
                    self._namespace_selectors[policy.name] = canonical.setdefault(chosen,
                                                                                  chosen)
        # The kinds a unique block indexes: their policies walk the object's lists (keys,
        # sizes, nulls), which costs more than searching the review's bytes once
        # (AdmissionRequest.facts); for other kinds the walks are the cheaper.
        self._body_fact_kinds = frozenset(kind for index in compiled.key_indexes
                                          for kind in index.kinds)
        plans = {policy.name: _Plan(policy, compiled, self._namespace_selectors)
                 for found in compiled.by_kind.values() for policy in found}
        # Indexed by (kind, operation) at load, so a request no policy matches by kind and
        # operation costs one dictionary look-up: no context, no evaluation, no allocation.
        self._mutating: dict[tuple[str, str], tuple[_Plan, ...]] = {}
        self._validating: dict[tuple[str, str], tuple[_Plan, ...]] = {}
        for kind, found in compiled.by_kind.items():
            for operation in ALL_OPERATIONS:
                at = [plans[p.name] for p in found if operation in p.match.operations]
                mutating = tuple(p for p in at if p.mutate
                                 and select is not None and select(p.policy))
                validating = tuple(p for p in at if p.validate and validations)
                if mutating:
                    self._mutating[kind, operation] = mutating
                if validating:
                    self._validating[kind, operation] = validating
        # Beside each of those lists, how its policies' namespace selectors narrow it (none
        # when no policy has one): see _phase.
        self._mutating_selectors = {at: _SelectorPlan(self._namespace_selectors, policies)
                                    for at, policies in self._mutating.items()
                                    if _has_selector(self._namespace_selectors, policies)}
        self._validating_selectors = {at: _SelectorPlan(self._namespace_selectors, policies)
                                      for at, policies in self._validating.items()
                                      if _has_selector(self._namespace_selectors, policies)}

    def counters(self) -> list[ObjectCounter]:
        """The counters the cluster view must index (what the policies' blocks ask for)."""
        return list(self.compiled.counters.values())

    def key_indexes(self) -> list[KeyIndex]:
        """The key indexes the cluster view must keep (what the policies' blocks ask for)."""
        return list(self.compiled.key_indexes)

    def counter_for(self, policy: Policy, kind: str) -> ObjectCounter | None:
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
        at = (request.key, request.operation)
        mutating = self._mutating.get(at, ())
        validating = self._validating.get(at, ())
        if not mutating and not validating:
            return decision
        state = RequestContext(
            request, cluster, self.compiled.bindings, self.compiled.memo, exceptions,
            body_facts=request.key in self._body_fact_kinds,
            prebind=self.compiled.prebinders.get(request.key),
        )
        try:
            state.spent = spent
            if started is None:
                started = self.clock() if self.clock is not None else 0.0
            # A deadline only when a clock reads it (None: no policy is ever late).
            deadline = started if self.deadline is not None and self.clock is not None \
                else None
            # One run for the request, told which policy it judges for: no object per policy.
            run = _PolicyRun(self, state, decision)
            if mutating:
                self._phase(mutating, self._mutating_selectors.get(at), True, run, deadline)
            matched_to_mutate = len(decision.matched_policies)
            if validating:
                self._phase(validating, self._validating_selectors.get(at), False, run,
                            deadline)
            # A policy that both mutates and validates matched in both phases: name it once.
            if matched_to_mutate:
                decision.matched_policies = list(dict.fromkeys(decision.matched_policies))
            if state.working_copy:
                decision.mutated_object = dict(state.object or {})
            if decision.violations:
                decision.allowed = not any(v.denies for v in decision.violations)
            decision.spent = state.spent
            return decision
        finally:
            state.release()  # its cycles: see RequestContext.release

    def _phase(self, policies: tuple[_Plan, ...], selectors: _SelectorPlan | None,
               mutate: bool, run: _PolicyRun, started: float | None) -> None:
        """Judge ``policies`` in order: their mutations, or their validations. ``started``:
        when the request's evaluation began, if a deadline applies.

        Policies whose namespaceSelector the request's namespace fails are left out first,
        each distinct selector judged once and the narrowed list looked up, not rebuilt:
        with 100 policies selecting production namespaces, a request elsewhere skips them
        all with no call per policy (then _applies need not judge selectors). Only while
        the cache is current: before, such a policy fails as its failurePolicy says
        (_applies), since the namespace's labels are not known."""
        state, decision = run.state, run.decision
        judged: Sequence[_Plan] = policies
        selected = False
        if selectors is not None and state.cluster_synced:
            judged, selected = selectors.for_namespace(state), True
        clock, limit = self.clock, self.deadline
        for plan in judged:
            # The clock read here, the call only once the deadline has passed.
            if started is not None and clock is not None and limit is not None \
                    and clock() - started > limit \
                    and self._late(started, plan.policy, state, decision):
                continue
            try:
                if not self._applies(plan, run, selected):
                    continue
                run.judging(plan)
                # Each of the policy's blocks of this phase, in order; the first that
                # cannot be evaluated fails the policy (what the blocks before it found
                # stands).
                for step in plan.mutate if mutate else plan.validate:
                    step(run)
            except PolicyEvaluationError as failure:
                self._failed(plan.policy, state, decision, str(failure))
            except Exception as error:  # see _unexpected
                self._unexpected(plan.policy, state, decision, error)

    def _applies(self, plan: _Plan, run: _PolicyRun, selected: bool = False) -> bool:
        state, decision = run.state, run.decision
        request = state.request  # kind and operation: already chosen by the index
        policy = plan.policy
        # Most policies exclude a namespace or two (kube-system), few exclude users.
        if plan.excluded_namespaces and request.namespace in plan.excluded_namespaces:
            return False
        if plan.excludes_users and (
            request.user.username in plan.excluded_users
            or not plan.excluded_groups.isdisjoint(request.user.groups)
        ):
            return False
        if plan.reads_cluster and not state.cluster_synced:
            # Answering from an empty cache would admit what the cluster state forbids.
            self._failed(policy, state, decision, "the cluster cache is not current (not "
                         "synced yet, or stale past its bound), and this policy reads cluster "
                         "state (namespaces or counted objects)")
            return False
        if not selected:
            selector = plan.namespace_selector
            if selector is not None and not state.namespace_selected(selector):
                return False
        if plan.object_selector is not None and not self._object_selected(policy, state):
            return False
        guard = plan.condition_guard
        if guard is not None and state.fits_assumptions is not True \
                and not self._affordable(policy, guard, state, decision):
            return False
        activation = run.activation
        for name, expression, memoized in plan.conditions:
            try:
                if memoized:
                    # It reads the Namespace alone: judged once per Namespace object.
                    passed = state.evaluate(expression, _NO_VARIABLES)
                    if type(passed) is not bool:
                        raise CelEvaluationError(
                            f"expected a bool, got {cel_type_name(passed)}")
                else:
                    # matchConditions read no policy variable: the request's activation
                    # as it is.
                    context = activation if plan.plain_conditions \
                        else state.context_for(_NO_VARIABLES, expression)
                    passed = expression.evaluate_bool(context)
                if not passed:
                    return False
            except CelEvaluationError as error:
                self._failed(policy, state, decision,
                             f"matchCondition {name!r} failed: {error}")
                return False
        guard = plan.guard
        if guard is not None and state.fits_assumptions is not True \
                and not self._affordable(policy, guard, state, decision):
            return False
        decision.matched_policies.append(plan.name)
        return True

    def _affordable(
        self, policy: Policy, guard: Guard, state: RequestContext, decision: Decision
    ) -> bool:
        """False (and the policy failed) when judging this input would exceed the budget."""
        if state.within_assumptions(self.compiled.size_checks):
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
        if source in self.compiled.blocks[policy.name].unwaivable:
            # A block said no exception waives this (the unique block: what another
            # namespace holds is not this namespace's to waive, and a unique policy that
            # failed did not check ownership at all).
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

    # -- blocks --------------------------------------------------------------------------

    def _patched(
        self,
        policy: Policy,
        state: RequestContext,
        decision: Decision,
        ops: list[dict[str, Any]],
        result: Mapping[str, Any],
    ) -> None:
        if self._exempted(
            policy, state, decision, self.mode_of(policy),
            "would patch: " + _describe_patch(ops), ViolationSource.MUTATION,
        ):
            return  # as Kyverno's exceptions do: an exempted object is not mutated either
        decision.patch.extend(ops)
        decision.mutations.append(AppliedMutation(policy.name, tuple(ops)))
        state.replace_object(result)

    def _message_affordable(self, policy: Policy, index: int, state: RequestContext) -> bool:
        """Whether a messageExpression fits what is left of the budget on this input."""
        guard = self.compiled.guards.get(policy.name)
        if guard is None or state.within_assumptions(self.compiled.size_checks):
            return True  # the guard's paths are part of the request kind's walk
        values = state.root_values()
        if guard.oversize(values) is None:
            return True
        cost = guard.message_cost(index, values)
        if state.spent + cost > self.budget:
            return False
        state.spent += cost
        return True


class _PolicyRun:
    """The engine's side of the block protocol (blocks/protocol.py Run): one policy judging
    one admission. One per request, told by ``judging`` which policy it is for (blocks
    use it only while they judge)."""

    __slots__ = ("_engine", "_policy", "_variables", "activation", "cluster", "decision",
                 "object", "policy_name", "request", "state")

    def __init__(self, engine: Engine, state: RequestContext, decision: Decision) -> None:
        self._engine = engine
        self.state = state
        self.decision = decision
        # Attributes, not properties (Run's members are read-only to blocks): a block reads
        # them several times a request, and each property read was a call.
        self.request: AdmissionRequest = state.request
        self.cluster: ClusterView = state.cluster
        # The object as the mutations so far left it: changed only by ``patch``.
        self.object: Mapping[str, Any] | None = state.object
        # Set by ``judging``, before any block runs.
        self._policy: Policy
        self.policy_name: str
        self._variables: Mapping[str, CelExpression]
        # Read per expression. Made with the run, and made again by ``patch`` (a mutation
        # starts a new one: RequestContext.replace_object).
        self.activation: Activation = state.activation

    def judging(self, plan: _Plan) -> _PolicyRun:
        self._policy = plan.policy
        self.policy_name = plan.name
        self._variables = plan.variables
        # Its variables are in scope while it is judged: its expressions read them from
        # the request's activation as they are (``context`` need tell of none).
        self.state.scope = plan.variable_bindings
        return self

    def context(self, *expressions: CelExpression | None) -> Activation:
        # The policy's expressions read its variables, which ``judging`` put in scope.
        return self.activation

    def evaluate(self, expression: CelExpression) -> Any:
        return self.state.evaluate(expression, self._variables)

    def explain(self, message: str) -> str:
        return self.state.explain(message)

    def message_affordable(self, index: int) -> bool:
        return self._engine._message_affordable(self._policy, index, self.state)

    def violation(self, message: str, source: ViolationSource) -> None:
        self._engine._record(self._policy, self.state, self.decision, message, source)

    def warning(self, message: str) -> None:
        self.decision.warnings.append(f"{self._policy.name}: {message}")

    def claim(self, claim: LimitClaim | KeyClaim) -> None:
        if isinstance(claim, LimitClaim):
            self.decision.limit_claims.append(claim)
        else:
            self.decision.key_claims.append(claim)

    def patch(self, operations: Sequence[Mapping[str, Any]], result: Mapping[str, Any]) -> None:
        ops = [dict(op) for op in operations]
        self._engine._patched(self._policy, self.state, self.decision, ops, result)
        self.object = self.state.object  # unchanged when an exception admitted it as it was
        self.activation = self.state.activation


def _covering(policy: Policy, state: RequestContext) -> PolicyException | None:
    """The active PolicyException that covers this request for ``policy``, if any."""
    request = state.request
    candidates = state.exceptions.candidates(request.namespace, policy.name)
    if not candidates:
        return None
    subject = state.object if state.object is not None else request.old_object
    labels = ((subject or {}).get("metadata") or {}).get("labels")
    return first_covering(candidates, request.judged_at, request.key, request.name, labels)


def _describe_patch(ops: list[dict[str, Any]]) -> str:
    return "; ".join(f"{op.get('op')} {op.get('path')}" for op in ops)


def _has_selector(selectors: Mapping[str, LabelSelector], policies: tuple[_Plan, ...]) -> bool:
    return any(policy.name in selectors for policy in policies)


class _Plan:
    """One policy laid out for the hot path: what _applies and _run read per request, looked
    up once at build (a request judging 100 policies makes no per-policy look-ups)."""

    __slots__ = (
        "condition_guard",
        "conditions",
        "excluded_groups",
        "excluded_namespaces",
        "excluded_users",
        "excludes_users",
        "guard",
        "mutate",
        "name",
        "namespace_selector",
        "object_selector",
        "plain_conditions",
        "policy",
        "reads_cluster",
        "validate",
        "variable_bindings",
        "variables",
    )

    def __init__(self, policy: Policy, compiled: CompiledPolicies,
                 selectors: Mapping[str, LabelSelector]) -> None:
        self.policy = policy
        self.name = policy.name
        exclude = policy.match.exclude
        self.excluded_namespaces = exclude.namespaces
        self.excluded_users = exclude.usernames
        self.excluded_groups = exclude.groups
        self.excludes_users = bool(exclude.usernames or exclude.groups)
        self.reads_cluster = policy.name in compiled.reads_cluster
        self.namespace_selector = selectors.get(policy.name)  # equal ones: one object
        self.object_selector = policy.match.object_selector
        self.condition_guard = compiled.condition_guards.get(policy.name)
        self.guard = compiled.guards.get(policy.name)
        # (name, expression, whether it reads the Namespace alone: judged once per
        # Namespace object by the memo), told once here rather than asked per request.
        memoized = compiled.memo.expressions
        self.conditions = tuple((c.name, c.expression, id(c.expression) in memoized)
                                for c in policy.match_conditions)
        self.plain_conditions = not any(c.expression.policy_variables
                                        for c in policy.match_conditions)
        blocks = compiled.blocks[policy.name]
        # Each block's judge itself where it has one (no Compiled.evaluate between).
        self.mutate = tuple(_step(block) for block in blocks.mutate)
        self.validate = tuple(_step(block) for block in blocks.validate)
        self.variables = compiled.variables[policy.name]
        # Each variable's binding name (bindings.py): the scope of the policy's expressions.
        self.variable_bindings = {expression.binding_prefix + name: (name, self.variables)
                                  for name, expression in self.variables.items()}


def _step(block: CompiledBlock) -> Callable[[_PolicyRun], None]:
    return block.judge if isinstance(block, Compiled) else block.evaluate


class _SelectorPlan:
    """The distinct namespace selectors of one (kind, operation) list of policies, and the
    list narrowed to each combination of their outcomes seen so far (a few: namespaces
    fall into a few label sets)."""

    MAX_NARROWED = 1024  # past it (thousands of label combinations) narrowed each time
    MAX_NAMESPACES = 8192  # the namespaces whose list is kept (then they start again)

    def __init__(self, selectors: Mapping[str, LabelSelector],
                 policies: tuple[_Plan, ...]) -> None:
        distinct = list(dict.fromkeys(s for p in policies
                                      if (s := selectors.get(p.name)) is not None))
        self.distinct = tuple(distinct)
        # Per policy, the position of its selector in ``distinct`` (-1: none).
        self._positions = tuple(distinct.index(selectors[p.name]) if p.name in selectors
                                else -1 for p in policies)
        self._policies = policies
        self._narrowed: dict[tuple[bool, ...], tuple[_Plan, ...]] = {}
        # Per Namespace object (the cache hands out a new one when it changes, and the entry
        # holds it, so its id is not reused) or per name when the namespace is unknown: the
        # list narrowed for it, so most requests judge no selector at all.
        self._by_namespace: dict[object, tuple[object, tuple[_Plan, ...]]] = {}

    def for_namespace(self, state: RequestContext) -> tuple[_Plan, ...]:
        """The list narrowed for the request's namespace, judged once per Namespace object."""
        namespace = state.namespace
        key: object = state.request.namespace if namespace is None else id(namespace)
        entry = self._by_namespace.get(key)
        if entry is not None and entry[0] is namespace:
            return entry[1]
        found = self.narrowed(state.namespace_selected)
        if len(self._by_namespace) >= self.MAX_NAMESPACES:
            self._by_namespace.clear()
        self._by_namespace[key] = (namespace, found)
        return found

    def narrowed(self, selected: Callable[[LabelSelector], bool]) -> tuple[_Plan, ...]:
        outcome = tuple(selected(selector) for selector in self.distinct)
        found = self._narrowed.get(outcome)
        if found is None:
            found = tuple(policy for policy, at in zip(self._policies, self._positions, strict=True)
                          if at < 0 or outcome[at])
            if len(self._narrowed) < self.MAX_NARROWED:
                self._narrowed[outcome] = found
        return found
