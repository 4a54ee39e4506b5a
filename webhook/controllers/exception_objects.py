"""PolicyException objects into the exception registry the server's admissions read.

Each change rebuilds the cluster's ExceptionSet from every object and swaps it in whole. An
object is left out, and logged once per generation, when

* it does not load (the CRD's schema refuses most mistakes before they get here), or
* the server's rules turn it away (``ExceptionRules``): exceptions are off (the default until
  ``serve --enable-exceptions``), it lives in a namespace ``--exception-namespace`` does not
  name, or its ``expiresAt`` is further from its creation than ``--max-exception-days``.

Either way it exempts nothing. ``left_out`` keeps why, per object, and each object gets a
status (written by the leader, as Policy statuses are; ``kubectl get ewpolex``):

* ``Ready=True, reason Honoured``: it exempts what it matches until its expiry;
* ``Ready=False, reason Ignored``: the server's rules turn it away; the message says which;
* ``Ready=False, reason Invalid``: it does not load; the message names each field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webhook.cluster.object_api import ApiFailure, ObjectApi
from webhook.controllers.policy_objects import PolicyStatus, generation_of
from webhook.errors import PolicyLoadError
from webhook.policy.load.documents import exception_from_object
from webhook.policy.model.exception_rules import ExceptionRules
from webhook.policy.model.exceptions import (
    ExceptionRegistry,
    ExceptionSet,
    PolicyException,
    rfc3339,
)

log = logging.getLogger("edgewarden.controllers")

SOURCE = "cluster"
HONOURED, INVALID, IGNORED = "Honoured", "Invalid", "Ignored"


class ExceptionObjects:
    def __init__(self, registry: ExceptionRegistry, rules: ExceptionRules | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.registry = registry
        self.rules = rules if rules is not None else ExceptionRules()
        # Only for an object without a creationTimestamp (the API server always sets one).
        self.clock = clock
        self._logged: set[tuple[str, str, str]] = set()
        self.invalid: dict[str, str] = {}  # namespace/name -> why it does not load
        self.ignored: dict[str, str] = {}  # namespace/name -> why the rules turn it away
        self.statuses: dict[str, PolicyStatus] = {}  # namespace/name -> its status
        self._said_off = False

    @property
    def left_out(self) -> dict[str, tuple[str, str]]:
        """namespace/name -> (Invalid or Ignored, why): every object that exempts nothing."""
        return {**{ref: (IGNORED, why) for ref, why in self.ignored.items()},
                **{ref: (INVALID, why) for ref, why in self.invalid.items()}}

    def sync(self, objects: Iterable[Mapping[str, Any]]) -> ExceptionSet:
        loaded: list[tuple[PolicyException, str]] = []
        invalid: dict[str, str] = {}
        generations: dict[str, int] = {}
        for obj in objects:
            metadata = obj.get("metadata") or {}
            ref = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
            generations[ref] = generation_of(obj)
            # Once per object and generation (a status write changes the resourceVersion).
            version = f"{metadata.get('uid', '')}/{generations[ref]}"
            try:
                loaded.append((exception_from_object({"apiVersion": obj.get("apiVersion"),
                                                      "kind": "PolicyException", **obj}),
                               version))
            except PolicyLoadError as error:
                invalid[ref] = str(error)
                self._log_once(ref, version, str(error),
                               "PolicyException %s does not load and exempts nothing: %s")
        at = self.clock() if self.clock is not None else None
        kept, turned_away = self.rules.honoured((e for e, _ in loaded), at)
        exceptions = ExceptionSet(kept)
        versions = {e.ref: version for e, version in loaded}
        ignored: dict[str, str] = {}
        if turned_away and not self.rules.enabled:
            # One line for all of them, not one per object: off is the default, not an error.
            if not self._said_off:
                self._said_off = True
                log.warning("%d PolicyException object(s) exempt nothing: PolicyExceptions are "
                            "off (serve --enable-exceptions and --exception-namespace turn "
                            "them on)", len(turned_away))
            ignored = {i.exception.ref: i.reason for i in turned_away}
        else:
            for item in turned_away:
                ref = item.exception.ref
                ignored[ref] = item.reason
                self._log_once(ref, versions.get(ref, ""), item.reason,
                               "PolicyException %s is ignored and exempts nothing: %s")
        self.invalid = invalid
        self.ignored = ignored
        self.registry.set_source(SOURCE, exceptions)
        self._judge(generations, exceptions)
        return exceptions

    def _judge(self, generations: Mapping[str, int], honoured: ExceptionSet) -> None:
        """Each object's status; a condition's transition time moves only when it flips."""
        now = self.clock() if self.clock is not None else time.time()
        statuses: dict[str, PolicyStatus] = {}
        for exception in honoured:
            approver = exception.approved_by or "nobody recorded"
            statuses[exception.ref] = PolicyStatus(
                generations.get(exception.ref, 1), True, HONOURED,
                f"exempts what it matches until {exception.expires} (approved by {approver})",
                now)
        for ref, (reason, why) in self.left_out.items():
            statuses[ref] = PolicyStatus(generations.get(ref, 1), False, reason, why, now)
        for ref, status in statuses.items():
            before = self.statuses.get(ref)
            if before is not None and before.ready == status.ready:
                statuses[ref] = PolicyStatus(status.generation, status.ready, status.reason,
                                             status.message, before.transition_at)
        self.statuses = statuses

    def _log_once(self, ref: str, version: str, why: str, template: str) -> None:
        marker = (ref, version, why)
        if marker not in self._logged:
            self._logged.add(marker)
            log.error(template, ref, why)


class ExceptionStatusWriter:
    """PolicyException statuses through the status subresource, from the leader only; a
    status the object already carries (as far as this writer knows) is not written again."""

    def __init__(self, exceptions: ObjectApi) -> None:
        self.exceptions = exceptions
        self._written: dict[str, dict[str, Any]] = {}

    def forget(self) -> None:
        """Write everything on the next round (leadership changed hands)."""
        self._written.clear()

    def write(self, statuses: Mapping[str, PolicyStatus]) -> int:
        """Write the statuses that changed; returns how many writes failed (to retry)."""
        failed = 0
        for ref in [r for r in self._written if r not in statuses]:
            del self._written[ref]
        for ref, status in sorted(statuses.items()):
            body = status.body(_seconds)
            if self._written.get(ref) == body:
                continue
            namespace, name = ref.split("/", 1)
            try:
                self.exceptions.patch_status(name, body, namespace)
            except ApiFailure as error:
                if error.not_found:
                    continue  # deleted meanwhile: nothing to write on
                failed += 1
                log.warning("could not write the status of PolicyException %s (%s); trying "
                            "again", ref, error)
                continue
            self._written[ref] = body
        return failed


def _seconds(at: float) -> str:
    """metav1.Time: RFC 3339 to the second."""
    return rfc3339(float(int(at)))
