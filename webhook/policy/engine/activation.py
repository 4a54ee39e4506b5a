"""The request's CEL activation: each name bound when an expression first reads it.

A module of its own because the class subclasses a dict subclass (runtime.SharedActivation):
mypyc compiles the engine's other modules into native classes (benchmarks/compiled_engine.py)
and cannot make this one native, so it stays plain Python here while they need not.
"""

from __future__ import annotations

from typing import Any, Protocol

from webhook.policy.cel.runtime import SharedActivation


class Binder(Protocol):
    """What binds a name the activation does not hold yet (context.RequestContext)."""

    def bind(self, name: str) -> Any: ...


class LazyActivation(SharedActivation):
    """The request's activation: a name is bound when an expression first reads it (the
    compiled expressions read ``env[name]``, and a dict subclass's ``__missing__`` answers
    a name not bound yet), so no expression lists or binds what it needs up front."""

    __slots__ = ("state",)

    def __init__(self, state: Binder) -> None:
        # SharedActivation's own __init__, written here: one call less per request.
        self.outcomes = {}  # each program's outcome is kept too (SharedActivation)
        self.state = state

    def __missing__(self, name: str) -> Any:
        return self.state.bind(name)
