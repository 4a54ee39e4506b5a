"""The ports the engine reads the cluster through; webhook.cluster implements them.

The engine owns these protocols, so it depends on no backend. It never lists: a limit asks
for the names of the objects that count in one namespace, and the backend keeps that answer
current (the watch cache indexes each registered counter; the in-memory cluster computes it
from its few objects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from webhook.policy.model.key_table import KeyMatch

if TYPE_CHECKING:
    from webhook.policy.model.exceptions import PolicyException


@runtime_checkable
class ObjectCounter(Protocol):
    """Decides whether an existing object counts toward a limit (a policy's ``where``)."""

    @property
    def key(self) -> str:
        """Stable identity: equal keys count the same objects."""
        ...

    @property
    def kind(self) -> str:
        """The kind counted, e.g. ``Service``."""
        ...

    def counts(self, obj: Mapping[str, Any]) -> bool:
        """True when ``obj`` counts; an object the expression cannot judge does not count."""
        ...


@runtime_checkable
class KeyIndex(Protocol):
    """Which keys an existing object holds, for a ``unique`` policy (see unique.py)."""

    @property
    def key(self) -> str:
        """Stable identity: equal keys index the same keys."""
        ...

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds (keys, see kinds.py) whose objects hold keys."""
        ...

    @property
    def match(self) -> KeyMatch:
        """How keys compare: which held keys a key runs into (key_table.py)."""
        ...

    def keys_of(self, obj: Mapping[str, Any]) -> frozenset[str]:
        """The keys ``obj`` holds; none when the expression cannot judge it."""
        ...


@runtime_checkable
class ClusterView(Protocol):
    """What the engine may read of the cluster. Implementations must be cheap to call."""

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        """The Namespace object, or None when it is unknown."""
        ...

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        """Names of the objects of ``counter.kind`` in ``namespace`` that ``counter`` counts."""
        ...

    def key_holders(self, index: KeyIndex, key: str) -> Mapping[str, Set[tuple[str, str, str]]]:
        """Every held key that ``key`` runs into under ``index.match`` (``key`` itself
        when held), each with the objects (kind, namespace, name) of ``index.kinds`` that
        hold it."""
        ...

    @property
    def synced(self) -> bool:
        """False until the view holds the whole cluster: what it says then is not the truth."""
        ...


class EmptyCluster:
    """A cluster with nothing in it: every namespace is unknown and nothing counts."""

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return None

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        return frozenset()

    def key_holders(self, index: KeyIndex, key: str) -> Mapping[str, Set[tuple[str, str, str]]]:
        return {}

    @property
    def synced(self) -> bool:
        return True


@runtime_checkable
class ExceptionView(Protocol):
    """The PolicyExceptions the engine honours; ``ExceptionSet`` (files, suites) and the
    watch cache (cluster objects) implement it. Must be cheap: the engine asks only when a
    policy would act on an object, and asks one (namespace, policy) at a time."""

    def candidates(self, namespace: str, policy: str) -> Sequence[PolicyException]:
        """Exceptions in ``namespace`` naming ``policy``, expired ones included (the engine
        judges expiry against the request's time)."""
        ...
