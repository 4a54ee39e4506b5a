"""Where, and for how long, PolicyExceptions may be honoured: closed by default.

The loader refuses what is wrong with one document (no ``expiresAt``; a selector that
matches everything, see :func:`match_all_problem`). These rules decide the rest, the same way
for ``serve`` and the offline commands: not at all until enabled, then only in the
namespaces named, and only when ``expiresAt`` is at most ``max_days`` after the exception
was created (a file, which has no creation time, from the instant judged). One the rules
turn away is ignored, with a reason for the log or the report.

Light on purpose (no CEL, no model): the command line builds these from flags at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webhook.policy.model.selectors import LabelSelector

if TYPE_CHECKING:
    from webhook.policy.model.exceptions import PolicyException

DEFAULT_MAX_EXCEPTION_DAYS = 90
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class IgnoredException:
    """An exception the rules turned away, and why (for a log line or a report note)."""

    exception: PolicyException
    reason: str

    def describe(self) -> str:
        return f"PolicyException {self.exception.ref} is ignored: {self.reason}"


@dataclass(frozen=True, slots=True)
class ExceptionRules:
    """Where, and for how long, PolicyExceptions may be honoured (Kyverno's
    ``--enablePolicyException`` and ``--exceptionNamespace``, plus a bounded lifetime).

    ``serve`` builds them from ``--enable-exceptions``, ``--exception-namespace`` and
    ``--max-exception-days`` (off by default). Offline commands honour the exceptions they
    are given, in the namespaces of ``--exception-namespace`` when it is given
    (``namespaces=None``: any namespace), with the same lifetime bound: given the server's
    flags, they judge as it does.
    """

    enabled: bool = False
    namespaces: frozenset[str] | None = frozenset()  # None: any namespace
    max_days: int = DEFAULT_MAX_EXCEPTION_DAYS

    @classmethod
    def offline(cls, namespaces: Iterable[str] = (),
                max_days: int = DEFAULT_MAX_EXCEPTION_DAYS) -> ExceptionRules:
        """What check, test, audit and report use: on, since exceptions were handed over."""
        named = frozenset(namespaces)
        return cls(enabled=True, namespaces=named or None, max_days=max_days)

    def refusal(self, exception: PolicyException, at: float | None) -> str | None:
        """Why ``exception`` may not be honoured (judged at ``at``), or None when it may."""
        if not self.enabled:
            return "PolicyExceptions are off (serve --enable-exceptions turns them on)"
        if self.namespaces is not None and exception.namespace not in self.namespaces:
            allowed = ", ".join(sorted(self.namespaces)) or "none"
            return (f"namespace {exception.namespace} is not one PolicyExceptions may live in "
                    f"(--exception-namespace: {allowed})")
        if exception.expires_at is None:
            return "it has no expiresAt"
        start = exception.created_at if exception.created_at is not None else at
        if start is None:
            return "its lifetime cannot be judged without a creation time or a clock"
        days = (exception.expires_at - start) / _DAY
        if days > self.max_days:
            since = "its creation" if exception.created_at is not None else "the instant judged"
            return (f"expiresAt is {days:.1f} days after {since}, more than the maximum of "
                    f"{self.max_days} (--max-exception-days)")
        return None

    def honoured(
        self, exceptions: Iterable[PolicyException], at: float | None
    ) -> tuple[tuple[PolicyException, ...], tuple[IgnoredException, ...]]:
        """The exceptions these rules honour at ``at``, and the others with the reason."""
        kept: list[PolicyException] = []
        ignored: list[IgnoredException] = []
        for exception in exceptions:
            reason = self.refusal(exception, at)
            if reason is None:
                kept.append(exception)
            else:
                ignored.append(IgnoredException(exception, reason))
        return tuple(kept), tuple(ignored)


# Offline commands without --exception-namespace: every exception given, in any namespace.
OFFLINE_RULES = ExceptionRules.offline()


def match_all_problem(selector: LabelSelector) -> str | None:
    """Why a PolicyException's selector would match practically every object, or None.

    An empty selector matches everything; so does one whose requirements are all
    ``DoesNotExist`` or ``NotIn``: each is met by any object without that label, and a key
    nobody sets (``no-such-label``) exempts the whole namespace. A selector must say what
    the objects it exempts carry: a ``matchLabels`` entry, or an ``In`` or ``Exists``.
    """
    if selector.is_empty:
        return ("an empty selector would exempt the whole namespace: name the objects, or "
                "exclude the namespace in the policy (match.exclude.namespaces)")
    if selector.match_labels:
        return None
    if any(r.operator in ("In", "Exists") for r in selector.match_expressions):
        return None
    return ("a selector of only DoesNotExist and NotIn requirements matches every object "
            "without those labels, i.e. practically the whole namespace: add a matchLabels "
            "entry or an In or Exists requirement on a label the exempted objects carry")
