"""Extension functions whose cel.stdlib form does not fit the runtime: ``first`` and
``last`` (cel-go's lists extension) give the runtime's optional."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.policy.cel.runtime.values import NONE, Optional, no_overload


def first(items: Any) -> Optional:
    if not isinstance(items, list | tuple):
        raise no_overload("first")
    return Optional.of(items[0]) if items else NONE


def last(items: Any) -> Optional:
    if not isinstance(items, list | tuple):
        raise no_overload("last")
    return Optional.of(items[-1]) if items else NONE


OVERRIDES: dict[str, Callable[..., Any]] = {"first": first, "last": last}
