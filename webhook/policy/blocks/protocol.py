"""The protocol of a policy block: one class per block, from YAML to a decision.

A block is one key of a policy's ``spec`` (``validations``, ``mutations``, ``limit``,
``unique``, or one a plug-in registers). Its :class:`Block` says, in one place:

* ``schema``: the JSON Schema of its YAML, which the loader validates with and the CRDs in
  deploy/crds are generated from (scripts/generate-crds);
* ``build``: how its loaded data is made from that YAML, reporting problems by YAML path so
  the loader can name file, line and field;
* ``slots``: its expressions, each with its YAML path and what it must yield: the static
  type and cost checks (load/policy_checks.py) and the evaluation budget's guards
  (engine/budget.py) read every expression of a policy through them;
* ``compile``: what it becomes for evaluation, once per load: a :class:`CompiledBlock`
  that judges one admission through a :class:`Run` (findings, patches, claims) and names
  the counters and key indexes it asks the cluster backend to keep.

The engine loops over the compiled blocks of each policy; it knows no block by name. The
registry (registry.py) lists the blocks in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from webhook.policy.cel.expression import Activation, CelExpression
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import KeyClaim, LimitClaim, ViolationSource
from webhook.policy.model.policy import Policy
from webhook.policy.model.ports import ClusterView, KeyIndex, ObjectCounter
from webhook.policy.model.request import AdmissionRequest

YamlPath = tuple[str | int, ...]

# What each kind of expression may read (as in ValidatingAdmissionPolicy).
MATCH_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject"})
BODY_VARIABLES = MATCH_VARIABLES | {"variables"}  # a policy's own variables too
OBJECT_ONLY = frozenset({"object"})  # what the cache can compute for any stored object
NAMESPACE_ONLY = frozenset({"namespaceObject"})

S = TypeVar("S")


class PolicyEvaluationError(Exception):
    """A policy could not be evaluated; the message names what failed (never a value)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One expression of a policy: where it is, what it must yield, what it may read."""

    path: YamlPath
    expression: CelExpression
    yields: str | None  # bool, string, int; None for a variable (any type)
    variable: str | None = None  # the variable this slot defines


class Builder(Protocol):
    """What the loader lends a block while it builds one policy document."""

    @property
    def internal_lb_flavour(self) -> str | None:
        """The installation's internal load-balancer flavour (None: each policy's own)."""
        ...

    def cel(self, source: str, path: YamlPath, allowed: frozenset[str]) -> CelExpression | None:
        """``source`` compiled for a place that may read ``allowed``; None (and a problem
        recorded at ``path``) when it does not compile."""
        ...

    def problem(self, path: YamlPath, message: str) -> None:
        """Refuse the policy: ``message`` about the field at ``path`` (a one-line sentence
        that names no value of the object)."""
        ...


class Run(Protocol):
    """One policy judging one admission: what a compiled block reads and where it tells.

    The engine implements it; a block never builds a Decision itself, so exceptions, modes,
    warnings and the budget apply to every block alike."""

    @property
    def policy_name(self) -> str: ...

    @property
    def request(self) -> AdmissionRequest: ...

    @property
    def object(self) -> Mapping[str, Any] | None:
        """The object as the mutations so far left it (None for a DELETE)."""
        ...

    @property
    def cluster(self) -> ClusterView: ...

    @property
    def activation(self) -> Activation:
        """The request's CEL context as it is: enough for an expression that reads no policy
        variable (``context`` also makes the policy's variables readable)."""
        ...

    def context(self, *expressions: CelExpression | None) -> Activation:
        """A CEL context holding what ``expressions`` read, the policy's variables included."""
        ...

    def evaluate(self, expression: CelExpression) -> Any:
        """``expression``'s value (from the namespace memo when it reads only the Namespace).
        Raises CelEvaluationError."""
        ...

    def explain(self, message: str) -> str:
        """An evaluation error, told as the failure of the policy variable it reached."""
        ...

    def message_affordable(self, index: int) -> bool:
        """Whether validation ``index``'s messageExpression fits the evaluation budget."""
        ...

    def violation(self, message: str, source: ViolationSource) -> None:
        """The policy does not hold: recorded in its mode, unless a PolicyException admits it."""
        ...

    def warning(self, message: str) -> None:
        """A warning for the client, named after the policy."""
        ...

    def claim(self, claim: LimitClaim | KeyClaim) -> None:
        """What the admission takes if it is allowed (the edge reserves it)."""
        ...

    def patch(self, operations: Sequence[Mapping[str, Any]], result: Mapping[str, Any]) -> None:
        """Mutate: ``operations`` (JSONPatch) turn the object into ``result``. Not applied
        when a PolicyException admits the object unmutated."""
        ...


class CompiledBlock(Protocol):
    """A block ready for evaluation: built once per load, shared by every request."""

    @property
    def counters(self) -> Sequence[ObjectCounter]:
        """Counters the cluster backend must keep current (one per counted kind)."""
        ...

    @property
    def key_indexes(self) -> Sequence[KeyIndex]:
        """Key indexes the cluster backend must keep current."""
        ...

    @property
    def reads_cluster(self) -> bool:
        """Its verdict needs the cluster's state (so an unsynced cache fails the policy)."""
        ...

    @property
    def unwaivable(self) -> frozenset[ViolationSource]:
        """Findings of its policy that no PolicyException waives while it has this block."""
        ...

    @property
    def namespace_only(self) -> Sequence[CelExpression]:
        """Expressions whose value may depend on the Namespace alone (memoised per
        Namespace when they do)."""
        ...

    def evaluate(self, run: Run) -> None:
        """Judge one admission; raise PolicyEvaluationError when it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class Compiled:
    """A CompiledBlock from parts: most blocks need only ``judge``."""

    judge: Callable[[Run], None]
    counters: Sequence[ObjectCounter] = ()
    key_indexes: Sequence[KeyIndex] = ()
    reads_cluster: bool = False
    unwaivable: frozenset[ViolationSource] = frozenset()
    namespace_only: Sequence[CelExpression] = ()

    def evaluate(self, run: Run) -> None:
        self.judge(run)


Rewrite = Callable[[CelExpression], CelExpression]


class Block(Generic[S]):
    """One kind of policy block. Subclass it, set the class attributes, implement
    ``build``, ``slots`` and ``compile``, and register an instance (registry.py).

    ``field`` names the Policy attribute that holds the data of the four built-in blocks;
    a plug-in block leaves it None and its data lives in ``Policy.blocks``.
    """

    name: ClassVar[str]  # the key under ``spec``
    phase: ClassVar[Phase]
    schema: ClassVar[Mapping[str, Any]]
    field: ClassVar[str | None] = None

    def data(self, policy: Policy) -> S | None:
        """This block's data in ``policy``, or None when it has none."""
        if self.field is None:
            found: Any = policy.block(self.name)
        else:
            found = getattr(policy, self.field)
        return found if found else None  # an empty tuple of validations is no block

    def schema_message(self, keyword: str, where: YamlPath) -> str | None:
        """A plainer message for a schema error of ``keyword`` (oneOf, maxProperties...) at
        ``where`` inside the block (``()``: the block itself); None keeps the generic one."""
        return None

    def build(self, raw: Any, builder: Builder) -> S | None:
        """The data of ``raw`` (schema-valid YAML under ``spec.<name>``); None when a
        problem was recorded."""
        raise NotImplementedError

    def slots(self, data: S) -> Iterator[Slot]:
        """Its expressions, by YAML path, with what each must yield."""
        raise NotImplementedError

    def compile(self, data: S, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        """The block ready for evaluation. ``policy`` is the loaded Policy (its name and
        match); ``rewrite`` recompiles an expression that runs in a request's context to
        read the request's shared, projected bindings (engine/bindings.py)."""
        raise NotImplementedError
