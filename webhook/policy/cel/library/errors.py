"""The one error the library functions raise: a message in Kubernetes' words with the
value left out (Kubernetes quotes the argument; our messages never show a value)."""

from __future__ import annotations


class LibraryError(ValueError):
    """A library function refused its argument; the message names no value."""


def no_such_overload(function: str) -> LibraryError:
    return LibraryError(f"no such overload: {function}")
