"""Per-request evaluation state: the namespace, the working object and the CEL activation.

Each binding (a variable, a field's value, a has() test) is computed only when the first
expression that reads it runs, and at most once per request; the compiled expressions read
the values as they are (webhook/policy/cel/runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.policy.blocks.protocol import PolicyEvaluationError
from webhook.policy.cel.expression import Activation, CelEvaluationError, CelExpression
from webhook.policy.cel.projection import project
from webhook.policy.engine.bindings import Binding
from webhook.policy.engine.budget import within_assumptions
from webhook.policy.engine.compiled import NamespaceMemo
from webhook.policy.model.namespaces import namespace_labels, namespace_object
from webhook.policy.model.nulls import without_nulls
from webhook.policy.model.ports import ClusterView, ExceptionView
from webhook.policy.model.request import AdmissionRequest

_UNBOUND = object()  # a field path that does not exist in this object
_SCALARS = frozenset({str, int, float, bool, type(None), list})


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or (type(value) not in _SCALARS and isinstance(value, Mapping))


class RequestContext:
    """What one request's evaluation reads; the engine makes one per request."""

    __slots__ = (
        "_cel",
        "_failed_variables",
        "_namespace",
        "_namespace_object",
        "_present",
        "_within_assumptions",
        "bindings",
        "cluster",
        "exceptions",
        "memo",
        "object",
        "request",
        "spent",
        "working_copy",
    )

    def __init__(
        self,
        request: AdmissionRequest,
        cluster: ClusterView,
        bindings: Mapping[str, Binding],
        memo: NamespaceMemo,
        exceptions: ExceptionView,
    ) -> None:
        self.memo = memo
        self.exceptions = exceptions
        self.request = request
        self.bindings = bindings
        self.cluster = cluster
        self._namespace = cluster.get_namespace(request.namespace) if request.namespace else None
        self._namespace_object: Mapping[str, Any] | None = None
        self.object: Mapping[str, Any] | None = request.object
        self.working_copy = False
        self._cel: Activation | None = None
        self._present: frozenset[str] = frozenset()
        # binding name -> why the policy variable failed; it stays unbound (see below)
        self._failed_variables: dict[str, str] = {}
        self.spent = 0.0  # evaluation budget used by the policies judged so far
        self._within_assumptions: bool | None = None

    def root_values(self) -> dict[str, Any]:
        """What each admission variable holds now (``object`` after the mutations so far)."""
        return {
            "object": self.object,
            "oldObject": self.request.old_object,
            "namespaceObject": self.namespace_object,
            "request": self.request.raw,
        }

    def within_assumptions(self, walk: Mapping[str, Any]) -> bool:
        """Nothing along ``walk`` (every path the request kind's guards read) exceeds the
        sizes the load-time cost estimates assume; walked once per object."""
        if self._within_assumptions is None:
            self._within_assumptions = within_assumptions(self.root_values(), walk)
        return self._within_assumptions

    @property
    def namespace_labels(self) -> Mapping[str, str]:
        return namespace_labels(self.request.namespace, self._namespace)

    @property
    def namespace_object(self) -> Mapping[str, Any]:
        if self._namespace_object is None:
            self._namespace_object = namespace_object(self.request.namespace, self._namespace)
        return self._namespace_object

    def context_for(
        self, policy_variables: Mapping[str, CelExpression], *expressions: CelExpression | None
    ) -> Activation:
        """An activation with what ``expressions`` read, computing policy variables on first use."""
        needed: frozenset[str] = frozenset()
        for expression in expressions:
            if expression is not None:
                needed = needed | expression.variables
        context = self.cel_context(needed)
        for expression in expressions:
            if expression is None:
                continue
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
        if value is NamespaceMemo.MISSING:
            value = expression.evaluate(self.context_for(variables, expression))
            self.memo.put(expression, namespace, value)
        return value

    def _bind_variables(
        self, policy_variables: Mapping[str, CelExpression], expression: CelExpression
    ) -> None:
        for name in expression.policy_variables:
            binding = expression.binding_prefix + name
            if binding in self._present:
                continue
            definition = policy_variables[name]
            self._present = self._present | {binding}
            try:
                value = self.evaluate(definition, policy_variables)
            except (CelEvaluationError, PolicyEvaluationError) as error:
                # Variables are lazy, as in ValidatingAdmissionPolicy: a failure matters only
                # where the expression reads the value. Left unbound, a read fails (and is
                # explained by `explain`), while `true || variables.x` still holds.
                self._failed_variables[binding] = self.explain(
                    f"variable {name!r} failed: {error}"
                )
                continue
            self.cel_context(frozenset())[binding] = value

    def explain(self, message: str) -> str:
        """An evaluation error, told as the failure of the variable it reached, if any."""
        for binding, failure in self._failed_variables.items():
            if f"'{binding}'" in message:
                return failure
        return message

    def cel_context(self, needed: frozenset[str]) -> Activation:
        """The request's CEL activation holding at least ``needed``."""
        if self._cel is None:
            self._cel = {}
        if needed <= self._present:
            return self._cel
        missing = needed - self._present
        for name in missing:
            value = self._value_of(name)
            if value is not _UNBOUND:  # left out, so reading it fails as in CEL
                self._cel[name] = value
        self._present = self._present | missing
        return self._cel

    def _value_of(self, name: str) -> Any:
        # A null field reads as an absent one (see nulls.py): walks stop at None, presence
        # tests say False, and the values handed to CEL carry no nulls.
        binding = self.bindings.get(name)
        if binding is None:
            return without_nulls(self._base_value(name))
        value = self._base_value(binding.variable)
        if binding.path is None:
            if binding.variable == "request" and binding.projection is None:
                # As in ValidatingAdmissionPolicy, `request` does not carry the objects.
                value = {k: v for k, v in value.items() if k not in ("object", "oldObject")}
            return without_nulls(project(value, binding.projection))
        walk = binding.path[:-1] if binding.presence else binding.path
        for segment in walk:
            if not _is_mapping(value):
                return _UNBOUND
            value = value.get(segment)
            if value is None:
                return _UNBOUND
        if binding.presence:
            return value.get(binding.path[-1]) is not None if _is_mapping(value) else _UNBOUND
        return without_nulls(project(value, binding.projection))

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
        self._within_assumptions = None
        # Every binding may read something else now: start a fresh activation.
        self._cel = None
        self._present = frozenset()
