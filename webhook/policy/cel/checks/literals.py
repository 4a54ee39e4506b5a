"""Literal arguments the API server checks when it compiles (cel-go's ValidateRegexLiterals,
ValidateDurationLiterals, ValidateTimestampLiterals, and the regex library's own
compilation): a pattern, duration or timestamp written in the expression that can never
work is refused at load, not on every request."""

from __future__ import annotations

import datetime
import re

import re2  # type: ignore[import-untyped]

from webhook.policy.cel.library.strings_format import template_problem
from webhook.policy.cel.syntax import Call, Literal

_REGEX_FUNCTIONS = {"matches": 0, "find": 0, "findAll": 0}  # the pattern's argument index
# RE2 itself judges a literal pattern, as cel-go does at compile time (the evaluator runs
# Python's re, which reads what RE2 accepts the same way for the patterns policies use).
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the refusal is ours to report, once, with the policy
_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|"
                       r"[-+]?0")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def format_problem(node: Call, kinds: list[str | None]) -> str | None:
    """``'template'.format([args])`` with a literal template and list, checked as cel-go's
    compile-time validator does against the arguments' kinds."""
    if node.function != "format" or not isinstance(node.target, Literal) \
            or node.target.kind != "string" or len(node.args) != 1:
        return None
    return template_problem(str(node.target.value), kinds)


def literal_problem(node: Call) -> str | None:
    """What is wrong with ``node``'s literal argument, if it has one that cannot work."""
    if node.function in _REGEX_FUNCTIONS and node.target is not None:
        index = _REGEX_FUNCTIONS[node.function]
        if len(node.args) > index and _is_string(node.args[index]):
            return _regex_problem(node.function, str(_value(node.args[index])))
    if node.target is None and len(node.args) == 1 and _is_string(node.args[0]):
        text = str(_value(node.args[0]))
        if node.function == "duration" and not _DURATION.fullmatch(text):
            return "invalid duration argument (a Go duration: 300ms, 1.5h, 2h45m)"
        if node.function == "timestamp" and not _valid_timestamp(text):
            return "invalid timestamp argument (RFC 3339: 2024-01-31T12:00:00Z)"
    return None


def _is_string(node: object) -> bool:
    return isinstance(node, Literal) and node.kind == "string"


def _value(node: object) -> object:
    assert isinstance(node, Literal)
    return node.value


def _regex_problem(function: str, pattern: str) -> str | None:
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(
            error.args[0], bytes) else str(error)
        return (f"invalid {function} argument: not an RE2 pattern, the regular expressions "
                f"Kubernetes uses ({reason})")
    try:
        re.compile(pattern)
    except re.error as error:
        return f"invalid {function} argument: the regular expression does not compile ({error})"
    return None


def _valid_timestamp(text: str) -> bool:
    if not _TIMESTAMP.fullmatch(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
