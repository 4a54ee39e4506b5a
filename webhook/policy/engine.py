"""The decision engine: a pure function of (policies, request, cluster view) -> Decision.

Order of work mirrors the API server: mutating policies run first, in load order, each
seeing the object as the previous ones left it; then validations and limits judge that
final object. Cheap checks (kind, operation, exclusions, selectors) run before any CEL, and
the CEL context for a request is built once, on first need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cel

from webhook.policy.ports import ClusterView, ObjectCounter
from webhook.policy.bindings import Binding, BindingPlan
from webhook.policy.cel import EXTENSION_FUNCTIONS, CelEvaluationError, CelExpression
from webhook.policy.decision import (
    AppliedMutation,
    Decision,
    FailurePolicy,
    LimitClaim,
    Mode,
    Violation,
    ViolationSource,
)
from webhook.policy.model import (
    InternalLoadBalancer,
    Limit,
    Policy,
    PolicySet,
    SetAnnotations,
    Validation,
)
from webhook.policy.patches import PatchError, add_absent_annotations, apply_raw_patch
from webhook.policy.projection import Projection, merge, project, selected_paths
from webhook.policy.request import AdmissionRequest

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


_NO_VARIABLES: Mapping[str, CelExpression] = {}
_UNBOUND = object()  # a field path that does not exist in this object


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or (type(value) not in _SCALARS and isinstance(value, Mapping))


_SCALARS = frozenset({str, int, float, bool, type(None), list})


class PolicyEvaluationError(Exception):
    """A policy could not be evaluated; the message names what failed."""


@dataclass(frozen=True, slots=True)
class LimitCounter:
    """Counts existing objects for one limit policy (its ``where``) — an ObjectCounter."""

    key: str
    kind: str
    where: CelExpression | None
    projection: Projection = None

    def counts(self, obj: Mapping[str, Any]) -> bool:
        if self.where is None:
            return True
        try:
            return self.where.evaluate({"object": project(obj, self.projection)}) is True
        except CelEvaluationError:
            return False


class NamespaceMemo:
    """Results of expressions that read only the Namespace, kept per Namespace object.

    A cap read from a namespace annotation (``maxExpression``, a variable) is the same for
    every admission in that namespace until the Namespace changes; the cluster view hands out
    a new object when it does, so the object's identity is the key (and is held, so an id is
    never reused while its entry lives).
    """

    _MISSING = object()

    def __init__(self, expressions: set[int], capacity: int = 8192) -> None:
        self.expressions = expressions
        self.capacity = capacity
        self._entries: dict[tuple[int, object], tuple[object, Any]] = {}

    def get(self, expression: CelExpression, namespace: object) -> Any:
        entry = self._entries.get((id(expression), _identity(namespace)))
        if entry is not None and entry[0] is namespace:
            return entry[1]
        return self._MISSING

    def put(self, expression: CelExpression, namespace: object, value: Any) -> None:
        if len(self._entries) >= self.capacity:
            self._entries.clear()
        self._entries[(id(expression), _identity(namespace))] = (namespace, value)


def _identity(namespace: object) -> object:
    return namespace if isinstance(namespace, str) else id(namespace)


class _RequestContext:
    """Per-request state: the namespace, the working object and the CEL context."""

    __slots__ = (
        "_cel",
        "_namespace",
        "_namespace_object",
        "_present",
        "bindings",
        "cluster",
        "memo",
        "object",
        "request",
        "working_copy",
    )

    def __init__(
        self,
        request: AdmissionRequest,
        cluster: ClusterView,
        bindings: Mapping[str, Binding],
        memo: NamespaceMemo,
    ) -> None:
        self.memo = memo
        self.request = request
        self.bindings = bindings
        self.cluster = cluster
        self._namespace = cluster.get_namespace(request.namespace) if request.namespace else None
        self._namespace_object: Mapping[str, Any] | None = None
        self.object: Mapping[str, Any] | None = request.object
        self.working_copy = False
        self._cel: cel.Context | None = None
        self._present: frozenset[str] = frozenset()

    @property
    def namespace_labels(self) -> Mapping[str, str]:
        if self._namespace is None:
            return {NAMESPACE_NAME_LABEL: self.request.namespace} if self.request.namespace else {}
        labels = (self._namespace.get("metadata") or {}).get("labels") or {}
        if NAMESPACE_NAME_LABEL not in labels:
            return {**labels, NAMESPACE_NAME_LABEL: self.request.namespace}
        return labels

    @property
    def namespace_object(self) -> Mapping[str, Any]:
        if self._namespace_object is None:
            self._namespace_object = _namespace_object(self.request.namespace, self._namespace)
        return self._namespace_object

    def context_for(
        self, policy_variables: Mapping[str, CelExpression], *expressions: CelExpression | None
    ) -> cel.Context:
        """A context with what ``expressions`` read, computing policy variables on first use."""
        needed: frozenset[str] = frozenset()
        for expression in expressions:
            if expression is not None:
                needed = needed | expression.variables
        context = self.cel_context(needed)
        for expression in expressions:
            if expression is None:
                continue
            if expression.functions:
                self._bind_functions(context, expression)
            if expression.policy_variables:
                self._bind_variables(policy_variables, expression)
        return context

    def evaluate(self, expression: CelExpression, variables: Mapping[str, CelExpression]) -> Any:
        """Evaluate ``expression``, from the namespace memo when it reads only the Namespace."""
        if id(expression) not in self.memo.expressions:
            return expression.evaluate(self.context_for(variables, expression))
        # An unknown namespace is synthesised from its name, so the name is its identity.
        namespace: object = (
            self._namespace if self._namespace is not None else self.request.namespace
        )
        value = self.memo.get(expression, namespace)
        if value is NamespaceMemo._MISSING:
            value = expression.evaluate(self.context_for(variables, expression))
            self.memo.put(expression, namespace, value)
        return value

    def _bind_functions(self, context: cel.Context, expression: CelExpression) -> None:
        for function in expression.functions:
            key = "fn:" + function
            if key not in self._present:
                context.add_function(function, EXTENSION_FUNCTIONS[function])
                self._present = self._present | {key}

    def _bind_variables(
        self, policy_variables: Mapping[str, CelExpression], expression: CelExpression
    ) -> None:
        for name in expression.policy_variables:
            binding = expression.binding_prefix + name
            if binding in self._present:
                continue
            definition = policy_variables[name]
            try:
                value = self.evaluate(definition, policy_variables)
            except CelEvaluationError as error:
                raise PolicyEvaluationError(f"variable {name!r} failed: {error}") from None
            self.cel_context(frozenset()).add_variable(binding, value)
            self._present = self._present | {binding}

    def cel_context(self, needed: frozenset[str]) -> cel.Context:
        """The request's CEL context holding at least ``needed``.

        Turning Python values into CEL values is the dominant cost of an evaluation, so a
        variable is converted only when the first expression that reads it runs.
        """
        if self._cel is None:
            self._cel = cel.Context()
        if needed <= self._present:
            return self._cel
        missing = needed - self._present
        if missing:
            for name in missing:
                value = self._value_of(name)
                if value is not _UNBOUND:  # left out, so reading it fails as in CEL
                    self._cel.add_variable(name, value)
            self._present = self._present | missing
        return self._cel

    def _value_of(self, name: str) -> Any:
        binding = self.bindings.get(name)
        if binding is None:
            return self._base_value(name)
        value = self._base_value(binding.variable)
        if binding.path is None:
            if binding.variable == "request" and binding.projection is None:
                # As in ValidatingAdmissionPolicy, `request` does not carry the objects.
                return {k: v for k, v in value.items() if k not in ("object", "oldObject")}
            return project(value, binding.projection)
        walk = binding.path[:-1] if binding.presence else binding.path
        for segment in walk:
            if not _is_mapping(value) or segment not in value:
                return _UNBOUND
            value = value[segment]
        if binding.presence:
            return binding.path[-1] in value if _is_mapping(value) else _UNBOUND
        return project(value, binding.projection)

    def _base_value(self, variable: str) -> Any:
        if variable == "object":
            return self.object
        if variable == "oldObject":
            return self.request.old_object
        if variable == "namespaceObject":
            return self.namespace_object
        if variable == "request":
            # Bindings select fields of the request; they never need the objects in it.
            return self.request.raw
        return None

    def replace_object(self, new: Mapping[str, Any]) -> None:
        """Mutations build new objects (copy on write); the request's own is never changed."""
        self.object = new
        self.working_copy = True
        self.object_changed()

    def object_changed(self) -> None:
        """After a mutation every binding may read something else: start a fresh context."""
        self._cel = None
        self._present = frozenset()


def _namespace_object(name: str, found: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The Namespace as CEL sees it; an unknown one still has its name label, as in Kubernetes."""
    if found is not None:
        metadata = found.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if NAMESPACE_NAME_LABEL in labels:
            return found
        labels = {**labels, NAMESPACE_NAME_LABEL: name}
        return {**found, "metadata": {**metadata, "labels": labels}}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAMESPACE_NAME_LABEL: name} if name else {}},
    }


class Engine:
    """Judges admissions against one loaded :class:`PolicySet`. Thread-safe, no I/O.

    ``force_audit`` turns every Enforce into Audit (the server's ``--dry-run``): nothing is
    denied, but every violation is still reported.
    """

    def __init__(self, policies: PolicySet, *, force_audit: bool = False) -> None:
        self.policies = policies
        self.force_audit = force_audit
        self._counters: dict[tuple[str, str], LimitCounter] = {}
        for policy in policies.policies:
            if policy.limit is not None:
                where = policy.limit.where
                for kind in sorted(policy.match.kinds):
                    key = f"{policy.name}/{kind}:{where.source if where else '*'}"
                    projection = _where_projection(where)
                    self._counters[(policy.name, kind)] = LimitCounter(key, kind, where, projection)
        self._plan = BindingPlan()
        rewritten = {policy.name: self._plan.policy(policy) for policy in policies.policies}
        self._by_kind = {
            kind: tuple(rewritten[p.name] for p in policies.for_kind(kind))
            for kind in {k for p in policies.policies for k in p.match.kinds}
        }
        self._variables = {
            policy.name: {v.name: v.expression for v in policy.variables}
            for policy in rewritten.values()
        }
        self._memo = NamespaceMemo(self._namespace_only(rewritten.values()))

    def _namespace_only(self, policies: Iterable[Policy]) -> set[int]:
        """Variables and caps whose value depends on the Namespace alone."""
        found: set[int] = set()
        for policy in policies:
            candidates = [v.expression for v in policy.variables]
            if policy.limit is not None and policy.limit.max_expression is not None:
                candidates.append(policy.limit.max_expression)
            for expression in candidates:
                reads = {
                    self._plan.bindings[v].variable
                    for v in expression.variables
                    if v in self._plan.bindings
                }
                plain = expression.variables - set(self._plan.bindings)
                if reads == {"namespaceObject"} and not plain and not expression.policy_variables:
                    found.add(id(expression))
        return found

    def counters(self) -> list[ObjectCounter]:
        """The limit counters the cluster view must index (one per limit policy and kind)."""
        return list(self._counters.values())

    def counter_for(self, policy: Policy, kind: str) -> LimitCounter | None:
        return self._counters.get((policy.name, kind))

    def mode_of(self, policy: Policy) -> Mode:
        if self.force_audit and policy.mode is Mode.ENFORCE:
            return Mode.AUDIT
        return policy.mode

    def limit_in_namespace(self, policy: Policy, namespace: Mapping[str, Any]) -> int | None:
        """The cap ``policy`` sets for a CREATE in ``namespace``; None where it does not apply.

        "Applies" is decided as an admission decides it: the excluded namespaces and the
        namespace selector (with the automatic name label). A ``maxExpression`` that fails
        for this namespace gives None too: admission would follow the policy's failurePolicy,
        and there is no cap to report.
        """
        if policy.limit is None or "CREATE" not in policy.match.operations:
            return None
        name = str((namespace.get("metadata") or {}).get("name") or "")
        if name in policy.match.exclude.namespaces:
            return None
        namespace_object = _namespace_object(name, namespace)
        selector = policy.match.namespace_selector
        labels = namespace_object["metadata"].get("labels") or {}
        if selector is not None and not selector.matches(labels):
            return None
        try:
            return self.limit_max(policy, namespace_object)
        except PolicyEvaluationError:
            return None

    def limit_max(self, policy: Policy, namespace_object: Mapping[str, Any]) -> int | None:
        """The cap ``policy`` sets in a namespace, or None when it has no limit."""
        if policy.limit is None:
            return None
        limit = policy.limit
        if limit.max_expression is None:
            return limit.max
        try:
            value = limit.max_expression.evaluate({"namespaceObject": namespace_object})
        except CelEvaluationError as error:
            raise PolicyEvaluationError(f"limit.maxExpression failed: {error}") from None
        return _checked_max(limit, value)

    # -- evaluation -------------------------------------------------------------------

    def evaluate(self, request: AdmissionRequest, cluster: ClusterView) -> Decision:
        decision = Decision()
        policies = self._by_kind.get(request.kind, ())
        if not policies:
            return decision
        state = _RequestContext(request, cluster, self._plan.bindings, self._memo)
        for policy in policies:
            if policy.mutations and self._applies(policy, state, decision):
                self._mutate(policy, state, decision)
        for policy in policies:
            if policy.validates and self._applies(policy, state, decision):
                self._validate(policy, state, decision)
        # A policy that both mutates and validates matched in both phases: name it once.
        decision.matched_policies = list(dict.fromkeys(decision.matched_policies))
        if state.working_copy:
            decision.mutated_object = dict(state.object or {})
        decision.allowed = not any(v.denies for v in decision.violations)
        return decision

    def _applies(self, policy: Policy, state: _RequestContext, decision: Decision) -> bool:
        request = state.request
        match = policy.match
        if request.operation not in match.operations:
            return False
        exclude = match.exclude
        if request.namespace in exclude.namespaces or request.user.username in exclude.usernames:
            return False
        if exclude.groups and not exclude.groups.isdisjoint(request.user.groups):
            return False
        if match.namespace_selector is not None and not match.namespace_selector.matches(
            state.namespace_labels
        ):
            return False
        if match.object_selector is not None and not self._object_selected(policy, state):
            return False
        if policy.match_conditions:
            for condition in policy.match_conditions:
                context = state.context_for(_NO_VARIABLES, condition.expression)
                try:
                    if not condition.expression.evaluate_bool(context):
                        return False
                except CelEvaluationError as error:
                    self._failed(
                        policy, decision, f"matchCondition {condition.name!r} failed: {error}"
                    )
                    return False
        decision.matched_policies.append(policy.name)
        return True

    @staticmethod
    def _object_selected(policy: Policy, state: _RequestContext) -> bool:
        # As in Kubernetes: an UPDATE matches when either the new or the old object matches.
        selector = policy.match.object_selector
        assert selector is not None
        for candidate in (state.object, state.request.old_object):
            if candidate is not None:
                labels = (candidate.get("metadata") or {}).get("labels")
                if selector.matches(labels):
                    return True
        return False

    def _failed(self, policy: Policy, decision: Decision, detail: str) -> None:
        """An evaluation error: Fail reports it as a violation in the policy's mode."""
        message = f"policy could not be evaluated: {detail}"
        if policy.failure_policy is FailurePolicy.IGNORE:
            decision.errors.append(f"[{policy.name}] {message} (ignored: failurePolicy Ignore)")
            return
        decision.errors.append(f"[{policy.name}] {message}")
        self._record(policy, decision, message, ViolationSource.ERROR)

    def _record(
        self, policy: Policy, decision: Decision, message: str, source: ViolationSource
    ) -> None:
        mode = self.mode_of(policy)
        decision.violations.append(Violation(policy.name, mode, message, source))
        if mode is Mode.WARN:
            decision.warnings.append(f"{policy.name}: {message}")
        elif mode is Mode.AUDIT:
            previous = decision.audit_annotations.get(policy.name)
            decision.audit_annotations[policy.name] = (
                f"{previous}; {message}" if previous else message
            )

    # -- mutations -----------------------------------------------------------------------

    def _mutate(self, policy: Policy, state: _RequestContext, decision: Decision) -> None:
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
            self._failed(policy, decision, f"mutation failed: {error}")
            return
        if ops:
            decision.patch.extend(ops)
            decision.mutations.append(AppliedMutation(policy.name, tuple(ops)))
            state.replace_object(obj)

    # -- validations and limits ------------------------------------------------------------

    def _validate(self, policy: Policy, state: _RequestContext, decision: Decision) -> None:
        variables = self._variables[policy.name]
        try:
            for validation in policy.validations:
                context = state.context_for(variables, validation.expression)
                try:
                    passed = validation.expression.evaluate_bool(context)
                except CelEvaluationError as error:
                    raise PolicyEvaluationError(
                        f"expression `{validation.expression.source}` failed: {error}"
                    ) from None
                if not passed:
                    message = _message(validation, state, variables)
                    self._record(policy, decision, message, ViolationSource.VALIDATION)
                    break  # like ValidatingAdmissionPolicy: the first failing validation speaks
            if policy.limit is not None:
                self._check_limit(policy, policy.limit, state, decision)
        except PolicyEvaluationError as error:
            self._failed(policy, decision, str(error))

    def _check_limit(
        self, policy: Policy, limit: Limit, state: _RequestContext, decision: Decision
    ) -> None:
        request = state.request
        if request.operation not in ("CREATE", "UPDATE") or state.object is None:
            return  # DELETE only frees room; CONNECT has no object
        counter = self._counters[(policy.name, request.kind)]
        variables = self._variables[policy.name]
        if not _counts(limit, state.context_for(variables, limit.where)):
            return
        already_counted = request.operation == "UPDATE" and request.old_object is not None
        if already_counted and counter.counts(request.old_object):  # type: ignore[arg-type]
            return  # already counted: lowering a cap must never freeze existing objects
        maximum = _limit_max(limit, state, variables)
        names = state.cluster.counted_names(request.namespace, counter)
        current = len(names) - (1 if request.name in names else 0)
        if current >= maximum:
            what = limit.message or f"at most {maximum} {request.kind} objects may count here"
            self._record(
                policy,
                decision,
                f"{what} (namespace {request.namespace} has {current} of {maximum})",
                ViolationSource.LIMIT,
            )
            return
        decision.limit_claims.append(
            LimitClaim(policy.name, counter.key, request.kind, request.namespace, request.name)
        )


def _where_projection(where: CelExpression | None) -> Projection:
    if where is None:
        return None
    return merge(selected_paths(where.program_source or where.source).get("object", [()]))


def _counts(limit: Limit, context: cel.Context) -> bool:
    if limit.where is None:
        return True
    try:
        return limit.where.evaluate_bool(context)
    except CelEvaluationError as error:
        raise PolicyEvaluationError(f"limit.where `{limit.where.source}` failed: {error}") from None


def _limit_max(limit: Limit, state: _RequestContext, variables: Mapping[str, CelExpression]) -> int:
    if limit.max_expression is None:
        assert limit.max is not None
        return limit.max
    try:
        value = state.evaluate(limit.max_expression, variables)
    except CelEvaluationError as error:
        raise PolicyEvaluationError(
            f"limit.maxExpression `{limit.max_expression.source}` failed: {error}"
        ) from None
    return _checked_max(limit, value)


def _checked_max(limit: Limit, value: Any) -> int:
    assert limit.max_expression is not None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyEvaluationError(
            f"limit.maxExpression `{limit.max_expression.source}` gave {value!r}, "
            "expected a non-negative int"
        )
    return value


def _message(
    validation: Validation, state: _RequestContext, variables: Mapping[str, CelExpression]
) -> str:
    if validation.message_expression is not None:
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
