"""What /readyz asks besides the server's own checks: the reasons and details the
composition root (webhook/serve) gathers from the parts it wires, fixed once serving starts.

Each check returns a reason when not ready, else None; each detail is a function giving a
JSON-able value for /readyz to show beside ready or not. Both are read per request. Adding
one after :meth:`Readiness.fix` is a wiring mistake and raises: nothing changes what
readiness means while the server runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[], str | None]


class Readiness:
    def __init__(self) -> None:
        self._checks: list[Check] = []
        self._details: dict[str, Callable[[], Any]] = {}
        self._fixed = False

    def add_check(self, check: Check) -> None:
        self._refuse_when_fixed()
        self._checks.append(check)

    def add_detail(self, name: str, read: Callable[[], Any]) -> None:
        self._refuse_when_fixed()
        if name in self._details:
            raise RuntimeError(f"readiness detail {name!r} is wired twice")
        self._details[name] = read

    def fix(self) -> None:
        """Serving starts: from now on the checks and details are what they are."""
        self._fixed = True

    def reasons(self) -> list[str]:
        return [reason for check in self._checks if (reason := check())]

    def details(self) -> dict[str, Any]:
        return {name: read() for name, read in self._details.items()}

    def _refuse_when_fixed(self) -> None:
        if self._fixed:
            raise RuntimeError("readiness is fixed once serving starts: wire it before")
