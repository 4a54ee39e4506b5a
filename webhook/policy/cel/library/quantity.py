"""Kubernetes' quantity library over ``resource.ParseQuantity``'s grammar and rounding.

A quantity is carried as its exact amount in plain decimal (``1Gi`` is ``1073741824``), so
``quantity('1Gi') == quantity('1024Mi')`` holds, as ``Quantity.Equal`` says."""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library import semver
from webhook.policy.cel.library.errors import LibraryError, no_such_overload

_CONTEXT = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_EVEN)
_FORMAT_WRONG = ("quantities must match the regular expression "
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = decimal.Decimal("1e-9")
_MAX_INT64 = 2**63 - 1


def _split(raw: str) -> tuple[bool, str, str, str]:
    """apimachinery's parseQuantityString: (positive, numerator, denominator, suffix)."""
    end = len(raw)
    pos = 0
    positive = True
    if raw[0] in "+-":
        positive = raw[0] == "+"
        pos = 1
    while pos < end and raw[pos] == "0":  # leading zeros
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and raw[pos].isdigit():
        pos += 1
    numerator = raw[start:pos] or "0"
    denominator = ""
    if pos < end and raw[pos] == ".":
        pos += 1
        start = pos
        while pos < end and raw[pos].isdigit():
            pos += 1
        denominator = raw[start:pos]
    suffix_start = pos
    while pos < end and raw[pos] in "eEinumkKMGTP":
        pos += 1
    if pos < end and raw[pos] in "+-":
        pos += 1
    while pos < end and raw[pos].isdigit():
        pos += 1
    if pos < end:
        raise LibraryError(_FORMAT_WRONG)
    return positive, numerator, denominator, raw[suffix_start:]


def parse(raw: Any, function: str = "quantity") -> decimal.Decimal:
    """The exact amount ``resource.ParseQuantity`` reads, or its error."""
    if not isinstance(raw, str):
        raise no_such_overload(function)
    if raw == "":
        raise LibraryError(_FORMAT_WRONG)
    positive, numerator, denominator, suffix = _split(raw)
    if not all(c.isascii() for c in numerator + denominator):
        raise LibraryError(_FORMAT_WRONG)
    amount = decimal.Decimal(f"{numerator}.{denominator or '0'}", context=_CONTEXT)
    if suffix in _DECIMAL:
        amount = amount.scaleb(_DECIMAL[suffix], _CONTEXT)
    elif suffix in _BINARY:
        amount = _CONTEXT.multiply(amount, decimal.Decimal(2 ** _BINARY[suffix]))
        if amount > _MAX_INT64:  # Kubernetes caps a binary-suffixed amount there
            amount = decimal.Decimal(_MAX_INT64)
    elif re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        amount = amount.scaleb(int(suffix[1:]), _CONTEXT)
    else:
        raise LibraryError("unable to parse quantity's suffix")
    # ParseQuantity rounds away from zero to the nano.
    if amount != amount.quantize(_NANO, context=_CONTEXT):
        amount = amount.quantize(_NANO, rounding=decimal.ROUND_UP, context=_CONTEXT)
    return amount if positive else -amount


def text(amount: decimal.Decimal) -> str:
    """The carried form: plain decimal, no exponent, no trailing zeros."""
    normal = amount.normalize(_CONTEXT)
    if normal == 0:
        return "0"
    return format(normal, "f")


def _amount(value: Any, function: str) -> decimal.Decimal:
    return parse(value, function)


def quantity(raw: Any) -> str:
    return text(parse(raw))


def is_quantity(raw: Any) -> bool:
    if not isinstance(raw, str):
        raise no_such_overload("isQuantity")
    try:
        parse(raw)
    except LibraryError:
        return False
    return True


def _integer(amount: decimal.Decimal) -> int | None:
    if amount != amount.to_integral_value() or not -(2**63) <= amount <= _MAX_INT64:
        return None
    return int(amount)


def as_integer(value: Any) -> int:
    found = _integer(_amount(value, "asInteger"))
    if found is None:
        raise LibraryError("cannot convert value to integer")
    return found


def is_integer(value: Any) -> bool:
    return _integer(_amount(value, "isInteger")) is not None


def as_approximate_float(value: Any) -> float:
    return float(_amount(value, "asApproximateFloat"))


def sign(value: Any) -> int:
    amount = _amount(value, "sign")
    return (amount > 0) - (amount < 0)


def compare_to(value: Any, other: Any) -> int:
    if semver.carried(value):  # the semver library shares these names
        return semver.compare_to(value, other)
    first, second = _amount(value, "compareTo"), _amount(other, "compareTo")
    return (first > second) - (first < second)


def is_greater_than(value: Any, other: Any) -> bool:
    if semver.carried(value):
        return semver.compare_to(value, other) == 1
    return _amount(value, "isGreaterThan") > _amount(other, "isGreaterThan")


def is_less_than(value: Any, other: Any) -> bool:
    if semver.carried(value):
        return semver.compare_to(value, other) == -1
    return _amount(value, "isLessThan") < _amount(other, "isLessThan")


def _operand(other: Any, function: str) -> decimal.Decimal:
    if isinstance(other, bool):
        raise no_such_overload(function)
    if isinstance(other, int):
        return decimal.Decimal(other)
    return _amount(other, function)


def add(value: Any, other: Any) -> str:
    return text(_CONTEXT.add(_amount(value, "add"), _operand(other, "add")))


def sub(value: Any, other: Any) -> str:
    return text(_CONTEXT.subtract(_amount(value, "sub"), _operand(other, "sub")))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": quantity,
    "isQuantity": is_quantity,
    "asInteger": as_integer,
    "isInteger": is_integer,
    "asApproximateFloat": as_approximate_float,
    "sign": sign,  # a global function in Kubernetes: sign(q), not q.sign()
    "compareTo": compare_to,
    "isGreaterThan": is_greater_than,
    "isLessThan": is_less_than,
    "add": add,
    "sub": sub,
}
