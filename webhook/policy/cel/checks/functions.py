"""Every function an expression may call: the runtime's standard functions ("native":
webhook/policy/cel/runtime/builtins.py), plus the extension functions
(``EXTENSION_FUNCTIONS``: cel-go's extensions, edgewarden's and Kubernetes' libraries).

The native list is what the Rust binding edgewarden evaluated with before evaluated itself
(common-expression-language 0.10), kept as it was so that what loads does not change: a
name not here is refused at load. tests/policy/test_functions.py
evaluates a sample call of every entry.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
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
class Overload:
    """One declared form, as Kubernetes declares it: ``target`` the receiver's kind for a
    method (None for a global call), ``args`` the arguments' kinds (``dyn`` takes any)."""

    target: str | None
    args: tuple[str, ...]
    result: Result


@dataclass(frozen=True, slots=True)
class Function:
    """How a function may be called and what it yields.

    ``method``/``call``: allowed as ``x.f(args)`` / ``f(args)``; ``arities`` the numbers of
    arguments (the target not counted), None for any; ``receiver`` the kind the target (or
    first argument) must be, when it matters; ``native``: the Rust binding evaluates it.
    ``overloads``, when given, are the exact forms Kubernetes declares: a call matching none
    (arity, call style or a known argument kind) is refused, as the API server refuses it.
    ``kubernetes``: the API server offers it to admission policies.
    """

    name: str
    method: bool
    call: bool
    arities: frozenset[int] | None
    result: Result
    native: bool
    receiver: str | None = None
    overloads: tuple[Overload, ...] = ()
    kubernetes: bool = True


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


# Kubernetes' declarations (k8s.io/apiserver/pkg/cel/library, cel-go's strings v2, sets,
# lists v3 and optional types at the pinned 1.37), one form per line:
#   "target.name(arg, ...) result" for a method, "name(arg, ...) result" for a global call.
# Kinds: the CelType kinds, plus the library's own types; ``same`` is the target's (or first
# argument's) type, ``element`` its element type.
SIGNATURES = """
string.startsWith(string) bool
string.endsWith(string) bool
string.contains(string) bool
string.matches(string) bool
size(string) int
size(bytes) int
size(list) int
size(map) int
string.size() int
bytes.size() int
list.size() int
map.size() int
string.charAt(int) string
string.indexOf(string) int
string.indexOf(string, int) int
string.lastIndexOf(string) int
string.lastIndexOf(string, int) int
string.lowerAscii() string
string.upperAscii() string
string.replace(string, string) string
string.replace(string, string, int) string
string.split(string) list(string)
string.split(string, int) list(string)
string.substring(int) string
string.substring(int, int) string
string.trim() string
list.join() string
list.join(string) string
strings.quote(string) string
string.format(list) string
sets.contains(list, list) bool
sets.equivalent(list, list) bool
sets.intersects(list, list) bool
list.isSorted() bool
list.sum() element
list.min() element
list.max() element
list.indexOf(dyn) int
list.lastIndexOf(dyn) int
list.distinct() same
list.flatten() list
list.flatten(int) list
list.slice(int, int) same
list.sort() same
list.first() optional(element)
list.last() optional(element)
lists.range(int) list(int)
string.find(string) string
string.findAll(string) list(string)
string.findAll(string, int) list(string)
url(string) URL
isURL(string) bool
URL.getScheme() string
URL.getHost() string
URL.getHostname() string
URL.getPort() string
URL.getEscapedPath() string
URL.getQuery() map(list)
ip(string) net.IP
isIP(string) bool
ip.isCanonical(string) bool
net.IP.family() int
net.IP.isUnspecified() bool
net.IP.isLoopback() bool
net.IP.isLinkLocalMulticast() bool
net.IP.isLinkLocalUnicast() bool
net.IP.isGlobalUnicast() bool
cidr(string) net.CIDR
isCIDR(string) bool
net.CIDR.containsIP(net.IP) bool
net.CIDR.containsIP(string) bool
net.CIDR.containsCIDR(net.CIDR) bool
net.CIDR.containsCIDR(string) bool
net.CIDR.ip() net.IP
net.CIDR.masked() net.CIDR
net.CIDR.prefixLength() int
quantity(string) kubernetes.Quantity
isQuantity(string) bool
sign(kubernetes.Quantity) int
kubernetes.Quantity.isGreaterThan(kubernetes.Quantity) bool
kubernetes.Quantity.isLessThan(kubernetes.Quantity) bool
kubernetes.Quantity.compareTo(kubernetes.Quantity) int
kubernetes.Quantity.asApproximateFloat() double
kubernetes.Quantity.asInteger() int
kubernetes.Quantity.isInteger() bool
kubernetes.Quantity.add(kubernetes.Quantity) kubernetes.Quantity
kubernetes.Quantity.add(int) kubernetes.Quantity
kubernetes.Quantity.sub(kubernetes.Quantity) kubernetes.Quantity
kubernetes.Quantity.sub(int) kubernetes.Quantity
kubernetes.NamedFormat.validate(string) optional(list(string))
semver(string) kubernetes.Semver
semver(string, bool) kubernetes.Semver
isSemver(string) bool
isSemver(string, bool) bool
kubernetes.Semver.major() int
kubernetes.Semver.minor() int
kubernetes.Semver.patch() int
kubernetes.Semver.isGreaterThan(kubernetes.Semver) bool
kubernetes.Semver.isLessThan(kubernetes.Semver) bool
kubernetes.Semver.compareTo(kubernetes.Semver) int
format.named(string) optional(kubernetes.NamedFormat)
optional.of(dyn) optional(same)
optional.ofNonZeroValue(dyn) optional(same)
optional.none() optional
optional.hasValue() bool
optional.value() element
optional.orValue(dyn) element
optional.or(optional) same
_optional_select(dyn, string) optional
_optional_index(dyn, dyn) optional
_cidr_ip(net.CIDR) net.IP
"""
# Library types the checker knows by name (their values are strings at run time).
LIBRARY_TYPES = frozenset({"URL", "net.IP", "net.CIDR", "kubernetes.Quantity",
                           "kubernetes.NamedFormat", "kubernetes.Semver"})
FORMAT_NAMES = (
    "dns1123Label", "dns1123Subdomain", "dns1035Label", "qualifiedName", "dns1123LabelPrefix",
    "dns1123SubdomainPrefix", "dns1035LabelPrefix", "labelValue", "uri", "uuid", "byte",
    "date", "datetime",
)
# edgewarden's own functions: the API server's CEL has none of them, so a policy calling
# one runs on the webhook only (validate warns; docs/native.md).
EDGEWARDEN_ONLY = frozenset(
    {"sets.of", "base64.encode", "base64.decode", "bool"}
    | {name for name in EXTENSION_FUNCTIONS if name.startswith("math.")}
)


def _kind(text: str) -> CelType:
    text = text.strip()
    if text.startswith("list(") and text.endswith(")"):
        return list_of(_kind(text[5:-1]))
    if text.startswith("map(") and text.endswith(")"):
        return map_of(_kind(text[4:-1]))
    if text.startswith("optional(") and text.endswith(")"):
        return CelType("optional", _kind(text[9:-1]))
    if text == "list":
        return list_of(DYN)
    if text == "map":
        return map_of(DYN)
    return CelType(text)


def _element_of(kind: CelType | None) -> CelType:
    if kind is None or kind.element is None:
        return DYN
    return kind.element


def _result(text: str) -> Result:
    """The result of a declared form: a fixed type, or one computed from the target."""
    def subject(target: CelType | None, args: list[CelType]) -> CelType | None:
        return target if target is not None else (args[0] if args else None)

    if text == "same":
        return lambda target, args: subject(target, args) or DYN
    if text == "element":
        return lambda target, args: _element_of(subject(target, args))
    if text == "optional(element)":
        return lambda target, args: CelType("optional", _element_of(subject(target, args)))
    if text == "optional(same)":
        return lambda target, args: CelType("optional", subject(target, args) or DYN)
    return _always(_kind(text))


_FORM = re.compile(r"(?:(?P<target>[\w.]+?)\.)?(?P<name>[\w]+(?:\.\w+)?)\((?P<args>[^)]*)\)"
                   r" (?P<result>\S+)")


def _declared() -> dict[str, list[Overload]]:
    found: dict[str, list[Overload]] = {}
    for line in SIGNATURES.strip().splitlines():
        head, _, result = line.rpartition(" ")
        name_part, _, arg_text = head.partition("(")
        args = tuple(a.strip() for a in arg_text.rstrip(")").split(",") if a.strip())
        target: str | None = None
        name = name_part
        # A namespaced global (sets.contains, ip.isCanonical, optional.of...) or a method.
        qualified = name_part in _GLOBAL_NAMESPACED
        if not qualified and "." in name_part:
            target, _, name = name_part.rpartition(".")
        found.setdefault(name, []).append(Overload(target, args, _result(result)))
    for name in FORMAT_NAMES:
        found.setdefault(f"format.{name}", []).append(
            Overload(None, (), _always(CelType("kubernetes.NamedFormat"))))
    return found


_GLOBAL_NAMESPACED = frozenset({
    "strings.quote", "sets.contains", "sets.equivalent", "sets.intersects", "lists.range",
    "ip.isCanonical", "format.named", "optional.of", "optional.ofNonZeroValue",
    "optional.none",
})
DECLARED = _declared()


def _with_overloads(function: Function) -> Function:
    overloads = tuple(DECLARED.get(function.name, ()))
    kubernetes = function.name not in EDGEWARDEN_ONLY
    if not overloads:
        return dataclasses.replace(function, kubernetes=kubernetes)
    method = any(o.target is not None for o in overloads)
    call = any(o.target is None for o in overloads)
    return dataclasses.replace(function, overloads=overloads, method=method, call=call,
                               kubernetes=kubernetes)


_ALL = {
    **{f.name: f for f in NATIVE},
    **{name: _extension(name, impl) for name, impl in sorted(EXTENSION_FUNCTIONS.items())},
}
FUNCTIONS: dict[str, Function] = {name: _with_overloads(f) for name, f in _ALL.items()}


def kind_fits(expected: str, actual: CelType) -> bool:
    """Whether a value of type ``actual`` may be passed where ``expected`` is declared (a
    value we cannot type is let through: the API server's checker would see it as dyn)."""
    wanted = expected.split("(", 1)[0]
    if wanted == "dyn" or actual.kind == "dyn":
        return True
    if wanted == "map" and actual.kind == "object":
        return True
    return wanted == actual.kind


def matching(function: Function, target: CelType | None, args: list[CelType]) -> Overload | None:
    """The first declared form this call fits, or None."""
    for overload in function.overloads:
        if (overload.target is None) != (target is None) or len(overload.args) != len(args):
            continue
        if target is not None and overload.target is not None \
                and not kind_fits(overload.target, target):
            continue
        if all(kind_fits(kind, arg) for kind, arg in zip(overload.args, args, strict=True)):
            return overload
    return None


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
