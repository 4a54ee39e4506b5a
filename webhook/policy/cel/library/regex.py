"""Kubernetes' regex library: ``s.find(re)`` and ``s.findAll(re[, n])``.

Patterns are RE2 in Kubernetes; Python's ``re`` reads the RE2 subset policies use the same
way, and the load-time check refuses a literal pattern either side cannot compile."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:
        raise LibraryError("Illegal regex: the pattern does not compile") from None


def _strings(text: Any, pattern: Any, function: str) -> re.Pattern[str]:
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise no_such_overload(function)
    return compile_pattern(pattern)


def find(text: Any, pattern: Any) -> str:
    found = _strings(text, pattern, "find").search(text)
    return found.group(0) if found else ""


def find_all(text: Any, pattern: Any, limit: Any = -1) -> list[str]:
    compiled = _strings(text, pattern, "findAll")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise no_such_overload("findAll")
    if limit == 0:
        return []
    found: list[str] = []
    last_end = -1
    for match in compiled.finditer(text):
        # Go's FindAll drops an empty match right after the previous match.
        if match.start() == match.end() and match.start() == last_end:
            continue
        found.append(match.group(0))
        last_end = match.end()
        if 0 < limit <= len(found):
            break
    return found


FUNCTIONS: dict[str, Callable[..., Any]] = {"find": find, "findAll": find_all}
