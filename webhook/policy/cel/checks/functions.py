"""Every function an expression may call: what the Rust binding evaluates natively, plus
the extension functions the engine binds (``EXTENSION_FUNCTIONS``, from ``cel.stdlib``).

The native list was found by evaluating each candidate with the binding
(common-expression-language 0.10): a name it does not evaluate is not here, so the
checker refuses at load what would fail on every request. tests/policy/test_functions.py
evaluates a sample call of every entry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from webhook.policy.cel.checks.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    OPTIONAL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    list_of,
    map_of,
)
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS

# The result type, from the target's type (None for a global call) and the arguments'.
Result = Callable[[CelType | None, list[CelType]], CelType]


def _always(kind: CelType) -> Result:
    return lambda target, args: kind


def _same_as_first(target: CelType | None, args: list[CelType]) -> CelType:
    if target is not None:
        return target
    return args[0] if args else DYN


@dataclass(frozen=True, slots=True)
class Function:
    """How a function may be called and what it yields.

    ``method``/``call``: allowed as ``x.f(args)`` / ``f(args)``; ``arities`` the numbers of
    arguments (the target not counted), None for any; ``receiver`` the kind the target (or
    first argument) must be, when it matters; ``native``: the Rust binding evaluates it.
    """

    name: str
    method: bool
    call: bool
    arities: frozenset[int] | None
    result: Result
    native: bool
    receiver: str | None = None


def _native(
    name: str,
    result: CelType | Result,
    *,
    method: bool = False,
    call: bool = False,
    arities: tuple[int, ...] = (1,),
    receiver: str | None = None,
) -> Function:
    produce = result if callable(result) else _always(result)
    return Function(name, method, call, frozenset(arities), produce, True, receiver)


_TIMESTAMP_PARTS = (
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
)

NATIVE: tuple[Function, ...] = (
    _native("size", INT, method=True, call=True, arities=(0, 1)),
    _native("contains", BOOL, method=True, receiver="string"),
    _native("startsWith", BOOL, method=True, receiver="string"),
    _native("endsWith", BOOL, method=True, receiver="string"),
    _native("matches", BOOL, method=True, receiver="string"),
    _native("int", INT, call=True),
    _native("uint", UINT, call=True),
    _native("double", DOUBLE, call=True),
    _native("string", STRING, call=True),
    _native("bytes", BYTES, call=True),
    _native("timestamp", TIMESTAMP, call=True),
    _native("duration", DURATION, call=True),
    _native("type", TYPE, call=True),
    _native("dyn", DYN, call=True),
    _native("optional.of", OPTIONAL, call=True),
    _native("optional.ofNonZeroValue", OPTIONAL, call=True),
    _native("optional.none", OPTIONAL, call=True, arities=(0,)),
    _native("hasValue", BOOL, method=True, arities=(0,), receiver="optional"),
    _native("value", DYN, method=True, arities=(0,), receiver="optional"),
    _native("orValue", DYN, method=True, receiver="optional"),
    _native("or", OPTIONAL, method=True, receiver="optional"),
    *(_native(name, INT, method=True, arities=(0,)) for name in _TIMESTAMP_PARTS),
)

# Extension functions whose target (or first argument) must be a string.
_STRING_FUNCTIONS = frozenset(
    {"charAt", "indexOf", "lastIndexOf", "substring", "replace", "lowerAscii", "upperAscii"}
    | {"trim", "split"}
)
_RESULTS: dict[str, CelType | Result] = {
    "bool": BOOL,
    "charAt": STRING,
    "indexOf": INT,
    "lastIndexOf": INT,
    "substring": STRING,
    "replace": STRING,
    "lowerAscii": STRING,
    "upperAscii": STRING,
    "trim": STRING,
    "split": list_of(STRING),
    "join": STRING,
    "strings.quote": STRING,
    "reverse": _same_as_first,
    "distinct": _same_as_first,
    "sort": _same_as_first,
    "slice": _same_as_first,
    "flatten": list_of(DYN),
    "first": OPTIONAL,
    "last": OPTIONAL,
    "lists.range": list_of(INT),
    "base64.encode": STRING,
    "base64.decode": BYTES,
    "math.isNaN": BOOL,
    "math.isInf": BOOL,
    "math.isFinite": BOOL,
    "math.abs": _same_as_first,
    "math.sign": _same_as_first,
    **{f"math.{name}": DOUBLE for name in ("ceil", "floor", "round", "trunc", "sqrt")},
    **{f"math.bit{name}": INT for name in ("Or", "And", "Xor", "Not", "ShiftLeft", "ShiftRight")},
    **{f"sets.{name}": BOOL for name in ("contains", "equivalent", "intersects")},
    "sets.of": map_of(BOOL),
}


def _extension(name: str, implementation: Callable[..., object]) -> Function:
    """A Python callback: callable as ``f(x, ...)`` or ``x.f(...)`` (namespaced: only the
    former), with the arities its signature allows (counted without the target)."""
    parameters = list(inspect.signature(implementation).parameters.values())
    arities: frozenset[int] | None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        arities = None
    else:
        required = sum(1 for p in parameters if p.default is p.empty)
        arities = frozenset(range(max(required - 1, 0), len(parameters)))
    result = _RESULTS.get(name, DYN)
    produce = result if callable(result) else _always(result)
    receiver = "string" if name in _STRING_FUNCTIONS else None
    return Function(name, "." not in name, True, arities, produce, False, receiver)


FUNCTIONS: dict[str, Function] = {
    **{f.name: f for f in NATIVE},
    **{name: _extension(name, impl) for name, impl in sorted(EXTENSION_FUNCTIONS.items())},
}


def accepts(function: Function, *, method: bool, count: int) -> bool:
    """Whether calling ``function`` this way, with ``count`` arguments, is provided."""
    if method and not function.method:
        return False
    if not method and not function.call:
        return False
    if function.arities is None:
        return True
    # A global call of a method-style extension passes the target as the first argument.
    wanted = count if method or function.native else count - 1
    return wanted in function.arities
