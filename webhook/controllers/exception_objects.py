"""PolicyException objects into the exception registry the server's admissions read.

Each change rebuilds the cluster's ExceptionSet from every object and swaps it in whole. An
object is left out, and logged once per generation, when

* it does not load (the CRD's schema refuses most mistakes before they get here), or
* the server's rules turn it away (``ExceptionRules``): exceptions are off (the default until
  ``serve --enable-exceptions``), it lives in a namespace ``--exception-namespace`` does not
  name, or its ``expiresAt`` is further from its creation than ``--max-exception-days``.

Either way it exempts nothing. ``left_out`` keeps why, per object, for whoever reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webhook.errors import PolicyLoadError
from webhook.policy.documents import exception_from_object
from webhook.policy.exception_rules import ExceptionRules
from webhook.policy.exceptions import ExceptionRegistry, ExceptionSet, PolicyException

log = logging.getLogger("edgewarden.controllers")

SOURCE = "cluster"
INVALID, IGNORED = "Invalid", "Ignored"


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
        self._said_off = False

    @property
    def left_out(self) -> dict[str, tuple[str, str]]:
        """namespace/name -> (Invalid or Ignored, why): every object that exempts nothing."""
        return {**{ref: (IGNORED, why) for ref, why in self.ignored.items()},
                **{ref: (INVALID, why) for ref, why in self.invalid.items()}}

    def sync(self, objects: Iterable[Mapping[str, Any]]) -> ExceptionSet:
        loaded: list[tuple[PolicyException, str]] = []
        invalid: dict[str, str] = {}
        for obj in objects:
            metadata = obj.get("metadata") or {}
            ref = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
            version = str(metadata.get("resourceVersion", ""))
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
        return exceptions

    def _log_once(self, ref: str, version: str, why: str, template: str) -> None:
        marker = (ref, version, why)
        if marker not in self._logged:
            self._logged.add(marker)
            log.error(template, ref, why)
