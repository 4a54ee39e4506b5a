"""Kubernetes' semver library (1.33+, version 1): ``semver(s[, normalize])``,
``isSemver(s[, normalize])``, ``major()``, ``minor()``, ``patch()``, ``compareTo()``,
``isGreaterThan()``, ``isLessThan()``, with blang/semver's parsing and precedence.

A version is carried as ``MAJOR.MINOR.PATCH[-PRERELEASE]``: build metadata takes no part
in equality or precedence, as in Kubernetes. Two dots tell it from a quantity's amount,
which shares compareTo/isGreaterThan/isLessThan (quantity.py dispatches here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload

_ALPHANUMERIC = re.compile(r"[0-9A-Za-z-]+")
_CARRIED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?")

Version = tuple[int, int, int, tuple[int | str, ...]]


def _number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise LibraryError(f"Invalid character(s) found in {what} number")
    if len(text) > 1 and text[0] == "0":
        raise LibraryError(f"{what.capitalize()} number must not contain leading zeroes")
    return int(text)


def parse(text: str) -> Version:
    """blang/semver's Parse (messages without the value)."""
    if not text:
        raise LibraryError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise LibraryError("No Major.Minor.Patch elements found")
    major, minor = _number(parts[0], "major"), _number(parts[1], "minor")
    rest, plus, build = parts[2].partition("+")
    patch_text, dash, pre_text = rest.partition("-")
    patch = _number(patch_text, "patch")
    pre: list[int | str] = []
    for identifier in pre_text.split(".") if dash else []:
        if not identifier:
            raise LibraryError("Prerelease is empty")
        if identifier.isascii() and identifier.isdigit():
            if len(identifier) > 1 and identifier[0] == "0":
                raise LibraryError("Numeric PreRelease version must not contain leading zeroes")
            pre.append(int(identifier))
        elif _ALPHANUMERIC.fullmatch(identifier):
            pre.append(identifier)
        else:
            raise LibraryError("Invalid character(s) found in prerelease")
    for identifier in build.split(".") if plus else []:
        if not identifier:
            raise LibraryError("Build meta data is empty")
        if not _ALPHANUMERIC.fullmatch(identifier):
            raise LibraryError("Invalid character(s) found in build meta data")
    return major, minor, patch, tuple(pre)


def normalize(text: str) -> str:
    """Kubernetes' normalizeAndParse: no "v", no leading zeros, minor and patch filled in."""
    text = text.removeprefix("v")
    parts = text.split(".", 2)
    for index, part in enumerate(parts):
        if len(part) > 1:
            part = part.lstrip("0")
            if not part or not part[0].isdigit():
                part = "0" + part
            parts[index] = part
    if len(parts) < 3:
        if any(c in parts[-1] for c in "+-"):
            raise LibraryError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _text(version: Version) -> str:
    major, minor, patch, pre = version
    core = f"{major}.{minor}.{patch}"
    return core + ("-" + ".".join(str(p) for p in pre) if pre else "")


def _read(raw: Any, normalizing: Any, function: str) -> Version:
    if not isinstance(raw, str) or not isinstance(normalizing, bool):
        raise no_such_overload(function)
    return parse(normalize(raw) if normalizing else raw)


def semver(raw: Any, normalizing: Any = False) -> str:
    return _text(_read(raw, normalizing, "semver"))


def is_semver(raw: Any, normalizing: Any = False) -> bool:
    try:
        _read(raw, normalizing, "isSemver")
    except LibraryError as error:
        if str(error).startswith("no such overload"):
            raise
        return False
    return True


def carried(value: Any) -> bool:
    """Whether ``value`` is a carried version (not a quantity's amount)."""
    return isinstance(value, str) and _CARRIED.fullmatch(value) is not None


def _version(value: Any, function: str) -> Version:
    if not carried(value):
        raise no_such_overload(function)
    return parse(value)


def _precedence(first: Version, second: Version) -> int:
    if first[:3] != second[:3]:
        return 1 if first[:3] > second[:3] else -1
    left, right = first[3], second[3]
    if not left or not right:
        return (not left) - (not right)
    for a, b in zip(left, right, strict=False):
        if a == b:
            continue
        if isinstance(a, int) != isinstance(b, int):
            return -1 if isinstance(a, int) else 1
        return 1 if a > b else -1  # type: ignore[operator]
    return (len(left) > len(right)) - (len(left) < len(right))


def compare_to(value: Any, other: Any) -> int:
    return _precedence(_version(value, "compareTo"), _version(other, "compareTo"))


def major(value: Any) -> int:
    return _version(value, "major")[0]


def minor(value: Any) -> int:
    return _version(value, "minor")[1]


def patch(value: Any) -> int:
    return _version(value, "patch")[2]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "semver": semver,
    "isSemver": is_semver,
    "major": major,
    "minor": minor,
    "patch": patch,
}
