"""The checks both ways of running an expression make between nodes (the closures of
compiler.py and the generated functions of codegen.py), written once so they fail alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.policy.cel.runtime.operators import equal
from webhook.policy.cel.runtime.values import CelError, no_overload, short_name


def non_bool(value: Any) -> CelError:
    """``&&``, ``||``, a quantifier or a filter given something other than a bool."""
    return no_overload(f"logical operator on {short_name(value)}")


def not_a_condition(value: Any) -> CelError:
    return no_overload(f"{short_name(value)} ? _ : _")


def iterable(value: Any, macro: str) -> Any:
    """What a comprehension iterates: a list's elements, a map's keys in the object's order."""
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, Mapping):
        return list(value)
    raise no_overload(f"{macro}() over {short_name(value)}")


def check_map_key(built: Mapping[Any, Any], key: Any) -> None:
    """A map literal's next key: a string, int or bool (CEL allows bool; it is an int here
    too), and not one it already holds (1 and 1u are one key)."""
    if not isinstance(key, str | int):
        raise CelError(f"unsupported map key type: {short_name(key)}")
    if key in built and any(equal(key, k) for k in built):
        raise CelError("Failed with repeated key")
