"""Per-request evaluation state: the namespace, the working object and the CEL activation.

Each binding (a variable, a field's value, a has() test) is computed only when the first
expression that reads it runs, and at most once per request; the compiled expressions read
the values as they are (webhook/policy/cel/runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from webhook.policy.blocks.protocol import PolicyEvaluationError
from webhook.policy.cel.checks.cost import DEFAULT_LIST_ITEMS, DEFAULT_MAP_ENTRIES
from webhook.policy.cel.expression import Activation, CelEvaluationError, CelExpression
from webhook.policy.cel.projection import project
from webhook.policy.engine.activation import LazyActivation
from webhook.policy.engine.bindings import Binding
from webhook.policy.engine.budget import SizeCheck
from webhook.policy.engine.compiled import NamespaceMemo
from webhook.policy.engine.prebind import Prebind
from webhook.policy.model.namespaces import namespace_labels
from webhook.policy.model.nulls import without_nulls
from webhook.policy.model.ports import ClusterView, ExceptionView
from webhook.policy.model.request import AdmissionRequest
from webhook.policy.model.selectors import LabelSelector

_UNBOUND = object()  # a field path that does not exist in this object
_ROOTS = frozenset({"object", "oldObject", "namespaceObject", "request"})
# What BodyFacts.null_free speaks of (the request's own top level may hold nulls); its
# max_items speaks of every root the body holds (budget.BODY_ROOTS), not the Namespace.
_NULL_FREE = frozenset({"object", "oldObject"})
_ASSUMED_ITEMS = min(DEFAULT_LIST_ITEMS, DEFAULT_MAP_ENTRIES)
_SCALARS = frozenset({str, int, float, bool, type(None), list})
_NONE: frozenset[str] = frozenset()  # no binding found unbound yet (a set once one is)
_NO_SCOPE: Mapping[str, tuple[str, Mapping[str, CelExpression]]] = MappingProxyType({})


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or (type(value) not in _SCALARS and isinstance(value, Mapping))


class RequestContext:
    """What one request's evaluation reads; the engine makes one per request."""

    __slots__ = (
        "_cel",
        "_facts",
        "_failed_variables",
        "_namespace",
        "_namespace_labels",
        "_namespace_object",
        "_prebind",
        "_retired",
        "_roots",
        "_selected",
        "_unbound",
        "_variables",
        "bindings",
        "cluster",
        "cluster_synced",
        "exceptions",
        "fits_assumptions",
        "memo",
        "object",
        "request",
        "scope",
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
        body_facts: bool = False,
        prebind: Prebind | None = None,
    ) -> None:
        self.memo = memo
        self._prebind = prebind  # binds the object's plain fields at once (prebind.py)
        self.exceptions = exceptions
        self.request = request
        self.bindings = bindings
        self.cluster = cluster
        self._namespace = cluster.get_namespace(request.namespace) if request.namespace else None
        self._namespace_object: Mapping[str, Any] | None = None
        self._namespace_labels: Mapping[str, Any] | None = None
        # id(namespace selector) -> whether the namespace matches it: policies share a few
        # selectors (compiled.py makes equal ones one object), each judged once a request.
        self._selected: dict[int, bool] | None = None  # made on first need, as below
        self.object: Mapping[str, Any] | None = request.object
        self.working_copy = False
        self._cel: LazyActivation | None = None
        self._retired: tuple[LazyActivation, ...] = ()  # activations a mutation replaced
        # binding name of a policy variable -> (its name, the policy's variables): the
        # variables of the policy being judged (set by the engine per policy, made once at
        # build), and those context_for was told of.
        self.scope: Mapping[str, tuple[str, Mapping[str, CelExpression]]] = _NO_SCOPE
        self._variables: dict[str, tuple[str, Mapping[str, CelExpression]]] = {}
        self._unbound: set[str] | frozenset[str] = _NONE  # bindings whose path this object lacks
        # id(a value bindings read) -> the value without its nulls, made once (see _field)
        self._roots: dict[int, Any] | None = None
        # binding name -> why the policy variable failed; it stays unbound (see below)
        self._failed_variables: dict[str, str] | None = None
        self.spent = 0.0  # evaluation budget used by the policies judged so far
        # within_assumptions' answer once asked (None: not yet, or the object was replaced):
        # read by the engine before it calls, as most policies of a request ask again.
        self.fits_assumptions: bool | None = None
        # Whether the cluster cache is current, asked once a request: the API-backed cache
        # checks every kind's freshness, which per policy cost more than judging it (the
        # engine makes a context only for a request some policy matches by kind, and nearly
        # every policy reads cluster state).
        self.cluster_synced: bool = cluster.synced
        # What the review's bytes tell (AdmissionRequest.facts), when the engine asks for
        # them (``body_facts``: the kind's policies walk much) and until a mutation replaces
        # the object they describe.
        self._facts = request.facts if body_facts else None

    def root_values(self) -> dict[str, Any]:
        """What each admission variable holds now (``object`` after the mutations so far)."""
        return {
            "object": self.object,
            "oldObject": self.request.old_object,
            "namespaceObject": self.namespace_object,
            "request": self.request.raw,
        }

    def within_assumptions(self, checks: Mapping[str, tuple[SizeCheck, SizeCheck]]) -> bool:
        """Nothing along the request kind's walk (compiled.size_checks: every path its
        guards read) exceeds the sizes the load-time cost estimates assume; walked once per
        object. When the review's body holds no collection larger than assumed, only the
        roots outside it (the Namespace) are walked."""
        if self.fits_assumptions is None:
            found = checks.get(self.request.key)
            if found is None:
                self.fits_assumptions = True
                return True
            check, outside_body = found
            facts = self._facts
            if facts is not None and facts.max_items <= _ASSUMED_ITEMS:
                check = outside_body
            # The roots as they are (no call per root); the Namespace only when walked.
            request = self.request
            values = {"object": self.object, "oldObject": request.old_object,
                      "request": request.raw}
            if "namespaceObject" in check.roots:
                values["namespaceObject"] = self.namespace_object
            self.fits_assumptions = check.fits(values)
        return self.fits_assumptions

    @property
    def namespace(self) -> Mapping[str, Any] | None:
        """The request's Namespace as the cluster view holds it (None: unknown)."""
        return self._namespace

    @property
    def namespace_labels(self) -> Mapping[str, str]:
        if self._namespace_labels is None:
            self._namespace_labels = namespace_labels(self.request.namespace, self._namespace)
        return self._namespace_labels

    def namespace_selected(self, selector: LabelSelector) -> bool:
        """Whether the request's namespace matches ``selector`` (judged once a request)."""
        judged = self._selected
        if judged is None:
            judged = self._selected = {}
        selected = judged.get(id(selector))
        if selected is None:
            selected = judged[id(selector)] = selector.matches(self.namespace_labels)
        return selected

    @property
    def namespace_object(self) -> Mapping[str, Any]:
        if self._namespace_object is None:
            self._namespace_object = self.memo.namespace_object(self.request.namespace,
                                                                self._namespace)
        return self._namespace_object

    @property
    def activation(self) -> Activation:
        """The request's activation, for expressions that read no policy variable."""
        activation = self._cel
        if activation is None:
            activation = self._new_activation()
        return activation

    def _new_activation(self) -> LazyActivation:
        activation = self._cel = LazyActivation(self)
        if self._prebind is not None:
            facts = self._facts  # null_free: as _field, which hands such values over whole
            self._prebind(self.object, self.request.raw, activation,
                          facts is not None and facts.null_free)
        return activation

    def context_for(
        self, policy_variables: Mapping[str, CelExpression], *expressions: CelExpression | None
    ) -> Activation:
        """The request's activation, for ``expressions`` of a policy with
        ``policy_variables``: every name is bound when an expression first reads it."""
        activation = self._cel
        if activation is None:
            activation = self._new_activation()
        for expression in expressions:
            if expression is not None and expression.policy_variables:
                prefix = expression.binding_prefix
                for name in expression.policy_variables:
                    binding = prefix + name
                    if binding not in self.scope and binding not in self._variables:
                        self._variables[binding] = (name, policy_variables)
        return activation

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

    def bind(self, name: str) -> Any:
        """The value of ``name``, the first time an expression reads it (KeyError: unbound,
        so reading it fails as in CEL)."""
        binding = self.bindings.get(name)
        if binding is not None and binding.variable != "request":
            # A field of an object (most bindings): read here, without the general path.
            value = self._field(binding) if name not in self._unbound else _UNBOUND
        else:
            variable = self.scope.get(name) or self._variables.get(name)
            if variable is not None:
                return self._bind_variable(name, *variable)
            if name in self._unbound or (binding is None and name not in _ROOTS):
                raise KeyError(name)
            value = self._value_of(name, binding)
        if value is _UNBOUND:
            unbound = self._unbound
            if isinstance(unbound, frozenset):
                unbound = self._unbound = set()
            unbound.add(name)
            raise KeyError(name)
        assert self._cel is not None
        self._cel[name] = value
        return value

    def _bind_variable(
        self, binding: str, name: str, policy_variables: Mapping[str, CelExpression]
    ) -> Any:
        if self._failed_variables is not None and binding in self._failed_variables:
            raise KeyError(binding)
        definition = policy_variables[name]
        activation = self._cel
        try:
            if activation is not None and not definition.policy_variables \
                    and id(definition) not in self.memo.expressions:
                # The plain case (what ``evaluate`` does, three calls less): a variable of
                # the object, read into the activation being bound.
                try:
                    value = definition.program.execute(activation)
                except Exception as fault:  # as CelExpression.evaluate
                    raise definition.failure(fault) from None
            else:
                value = self.evaluate(definition, policy_variables)
        except (CelEvaluationError, PolicyEvaluationError) as error:
            # Variables are lazy, as in ValidatingAdmissionPolicy: a failure matters only
            # where the expression reads the value. Left unbound, a read fails (and is
            # explained by `explain`), while `true || variables.x` still holds.
            failure = self.explain(f"variable {name!r} failed: {error}")
            if self._failed_variables is None:
                self._failed_variables = {}
            self._failed_variables[binding] = failure
            raise KeyError(binding) from None
        assert self._cel is not None
        self._cel[binding] = value
        return value

    def explain(self, message: str) -> str:
        """An evaluation error, told as the failure of the variable it reached, if any."""
        for binding, failure in (self._failed_variables or {}).items():
            if f"'{binding}'" in message:
                return failure
        return message

    def _value_of(self, name: str, binding: Binding | None) -> Any:
        """A whole root (``binding`` None) or a binding of ``request`` (bind reads the
        objects' fields itself, through _field)."""
        # A null field reads as an absent one (see nulls.py): walks stop at None, presence
        # tests say False, and the values handed to CEL carry no nulls.
        if binding is None:
            return self._without_nulls(name, self._base_value(name))
        value: Any = self.request.raw
        if binding.path is None:
            if binding.projection is None:
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

    def _without_nulls(self, root: str, value: Any) -> Any:
        """``value`` (read from ``root``) without its nulls; no walk when the body told none
        sits in it."""
        if root in _NULL_FREE and self._facts is not None and self._facts.null_free:
            return value
        return without_nulls(value)

    def _field(self, binding: Binding) -> Any:
        """A binding of object, oldObject or namespaceObject. The compiled expressions read
        values as they are, so the binding is the value itself (no projected copy), without
        its nulls: only the subtree an expression reads is walked for them, once a request
        (a policy reading ``object.metadata.labels`` never walks ``managedFields``)."""
        variable = binding.variable
        value: Any = self.object if variable == "object" else self._base_value(variable)
        path = binding.path
        if path is not None:
            walk = path[:-1] if binding.presence else path
            for segment in walk:
                if type(value) is not dict and not _is_mapping(value):
                    return _UNBOUND
                value = value.get(segment)
                if value is None:
                    return _UNBOUND
            if binding.presence:
                if type(value) is not dict and not _is_mapping(value):
                    return _UNBOUND
                return value.get(path[-1]) is not None
        if type(value) is not dict and type(value) is not list:
            return value
        if variable in _NULL_FREE and self._facts is not None and self._facts.null_free:
            return value
        roots = self._roots
        if roots is None:
            roots = self._roots = {}
        cleaned = roots.get(id(value), _UNBOUND)
        if cleaned is _UNBOUND:
            # Keyed by identity: the request's objects live as long as this context.
            cleaned = roots[id(value)] = without_nulls(value)
        return cleaned

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

    def release(self) -> None:
        """Break the request's reference cycles once it is judged: an activation names this
        context (it binds names through it), and a kept error holds the frame that read the
        activation. Then the request's objects (its whole parsed review) go by reference
        counting as the engine returns; left to the collector, they piled up between
        collections and a collection stalled the server for milliseconds."""
        for activation in (*self._retired, self._cel):
            if activation is not None:
                activation.outcomes.clear()
                activation.clear()
        self._retired = ()
        self._cel = None

    def replace_object(self, new: Mapping[str, Any]) -> None:
        """Mutations build new objects (copy on write); the request's own is never changed."""
        self.object = new
        self.working_copy = True
        self.fits_assumptions = None
        self._facts = None  # a patch may add what the body did not hold
        # Every binding may read something else now: start a fresh activation (policy
        # variables are computed again too, as they were for the old object).
        self._roots = None
        if self._cel is not None:
            self._retired = (*self._retired, self._cel)
        self._cel = None
        self._unbound = _NONE
        self._failed_variables = None
