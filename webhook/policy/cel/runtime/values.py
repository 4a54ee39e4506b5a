"""CEL's values as Python values, read as they are (no conversion of admission objects).

null is None, bool, int (int64), ``UInt`` (uint64, an int subclass so JSON and Python see
a number), double (float), string, bytes, list (list or tuple), map (any Mapping),
timestamp (an aware datetime), duration (timedelta), ``CelType`` (a type as a value) and
``Optional``. An evaluation error is a ``CelError`` raised through the closures; ``&&``,
``||``, ``all`` and ``exists`` catch it where CEL absorbs it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
UINT_MAX = 2**64 - 1


class UInt(int):
    """A CEL uint: an int to Python, its own type to CEL (``1u != 1`` is false, as CEL's
    heterogeneous equality says, but ``type(1u)`` is uint and ``1u + 1`` has no overload)."""

    __slots__ = ()


class CelError(Exception):
    """CEL's error value. The message names types, operators and names written in the
    expression, never a value read from the input."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingKey(CelError):
    """A map has no such key; the message depends on whether the policy spells the key."""

    def __init__(self, key: Any) -> None:
        super().__init__("no such key")
        self.key = key


class Unbound(CelError):
    """A name the activation does not bind."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no such variable or function: '{name}'")
        self.name = name


def no_overload(what: str) -> CelError:
    return CelError(f"no such overload: {what}")


def overflow() -> CelError:
    return CelError("integer overflow")


class CelType:
    """A type as a value: ``type(x)``, ``int``, ``string``... compare by name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CelType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("type", self.name))

    def __repr__(self) -> str:
        return self.name


TYPES: dict[str, CelType] = {
    name: CelType(name)
    for name in ("int", "uint", "double", "bool", "string", "bytes", "list", "map",
                 "null_type", "type", "google.protobuf.Timestamp", "google.protobuf.Duration",
                 "optional_type")
}


class Optional:
    """cel-go's optional: a value or none."""

    __slots__ = ("present", "value")

    def __init__(self, present: bool, value: Any = None) -> None:
        self.present = present
        self.value = value

    @staticmethod
    def of(value: Any) -> Optional:
        return Optional(True, value)

    @staticmethod
    def none() -> Optional:
        return NONE

    def has_value(self) -> bool:
        return self.present

    def __eq__(self, other: object) -> bool:
        # CEL's equality of the values is operators.equal's (which compares optionals).
        if not isinstance(other, Optional) or other.present != self.present:
            return False
        return not self.present or bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.present)

    def __repr__(self) -> str:
        return f"optional.of({self.value!r})" if self.present else "optional.none()"


NONE = Optional(False)


def type_name(value: Any) -> str:
    """``value``'s CEL type name (for ``type()`` and for messages: never the value)."""
    kind = type(value)
    name = _NAMES.get(kind)
    if name is not None:
        return name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, UInt):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, datetime.datetime):
        return "google.protobuf.Timestamp"
    if isinstance(value, datetime.timedelta):
        return "google.protobuf.Duration"
    if isinstance(value, Optional):
        return "optional_type"
    if isinstance(value, CelType):
        return "type"
    return kind.__name__


_NAMES: dict[type, str] = {
    bool: "bool", int: "int", UInt: "uint", float: "double", str: "string", bytes: "bytes",
    list: "list", tuple: "list", dict: "map", type(None): "null_type",
    datetime.datetime: "google.protobuf.Timestamp",
    datetime.timedelta: "google.protobuf.Duration", Optional: "optional_type",
    CelType: "type",
}


def short_name(value: Any) -> str:
    """A type name for messages: ``timestamp`` rather than its protobuf name."""
    name = type_name(value)
    return {"google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration",
            "null_type": "null", "optional_type": "optional"}.get(name, name)


def check_int(value: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    raise overflow()


def check_uint(value: int) -> UInt:
    if 0 <= value <= UINT_MAX:
        return UInt(value)
    raise overflow()
