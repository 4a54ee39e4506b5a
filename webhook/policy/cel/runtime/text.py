"""Text the runtime makes: Go's rendering of a double (what ``string(double)`` gives in
cel-go) and compiled regular expressions."""

from __future__ import annotations

import functools
import math
import re


def go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 64)`` (what ``string(double)`` is in cel-go):
    the shortest digits, in exponent form below 1e-4 or from 1e6 (``1e+06``, ``1.5``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    mantissa, _, power = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    leading_zeros = len(fraction) - len(fraction.lstrip("0"))
    exponent = len(whole) - 1 if whole != "0" else -(leading_zeros + 1)
    exponent += int(power) if power else 0
    digits = (whole + fraction).strip("0") or "0"
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent >= len(digits) - 1:
        return sign + digits + "0" * (exponent - len(digits) + 1)
    if exponent >= 0:
        return sign + digits[:exponent + 1] + "." + digits[exponent + 1:]
    return sign + "0." + "0" * (-exponent - 1) + digits



@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled once (policies match the same few patterns on every request).
    Patterns are RE2 in Kubernetes; Python's ``re`` reads the RE2 subset policies use the
    same way, and the load-time check refuses a literal pattern either side cannot compile."""
    return re.compile(pattern)
