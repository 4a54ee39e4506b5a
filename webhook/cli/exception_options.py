"""The PolicyException flags of the offline commands (check, test, audit, report).

Offline, exceptions are honoured when they are given (``--exceptions``, a suite's
``spec.exceptions``, PolicyException objects among the inputs or in the audited cluster):
handing them over is the opt-in that ``serve --enable-exceptions`` is for the server.
``--exception-namespace`` and ``--max-exception-days`` mean what they mean for ``serve``:
given the server's values, an offline command honours exactly the exceptions it honours.
Without ``--exception-namespace`` every namespace is allowed. Each exception turned away is
named on stderr with the reason; it exempts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from webhook.cli.app import err_console
from webhook.policy.model.exception_rules import DEFAULT_MAX_EXCEPTION_DAYS, ExceptionRules

if TYPE_CHECKING:
    from webhook.policy.model.exception_rules import IgnoredException
    from webhook.policy.model.exceptions import ExceptionSet

ExceptionNamespaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exception-namespace", metavar="NAMESPACE",
        help="Honour PolicyExceptions only in this namespace (repeatable), as serve "
        "--exception-namespace does; default: every namespace.",
    ),
]
MaxExceptionDaysOption = Annotated[
    int,
    typer.Option(
        "--max-exception-days", min=1,
        help="Ignore a PolicyException whose expiresAt is further than this many days from "
        "its creation (a file's: from the instant judged), as serve does.",
    ),
]


def offline_rules(namespaces: Iterable[str] | None, max_days: int) -> ExceptionRules:
    return ExceptionRules.offline(namespaces or (), max_days)


def honour(found: ExceptionSet, rules: ExceptionRules, at: float) -> ExceptionSet:
    """The exceptions ``rules`` honour at ``at``; a note on stderr for each one left out."""
    from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet

    kept, ignored = rules.honoured(found, at)
    say_ignored(ignored)
    return ExceptionSet(kept) if kept else NO_EXCEPTIONS


def say_ignored(ignored: Iterable[IgnoredException]) -> None:
    for item in ignored:
        err_console.print(f"note: {item.describe()}", highlight=False, markup=False)


__all__ = ["DEFAULT_MAX_EXCEPTION_DAYS", "ExceptionNamespaceOption", "MaxExceptionDaysOption",
           "honour", "offline_rules", "say_ignored"]
