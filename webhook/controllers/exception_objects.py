"""PolicyException objects into the exception registry the server's admissions read.

Each change rebuilds the cluster's ExceptionSet from every object and swaps it in whole. An
object that does not load (the CRD's schema refuses most mistakes before they get here) is
left out and logged once per generation: it exempts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.errors import PolicyLoadError
from webhook.policy.documents import exception_from_object
from webhook.policy.exceptions import ExceptionRegistry, ExceptionSet, PolicyException

log = logging.getLogger("edgewarden.controllers")

SOURCE = "cluster"


class ExceptionObjects:
    def __init__(self, registry: ExceptionRegistry) -> None:
        self.registry = registry
        self._logged: set[tuple[str, str, str]] = set()
        self.invalid: dict[str, str] = {}  # namespace/name -> why it is left out

    def sync(self, objects: Iterable[Mapping[str, Any]]) -> ExceptionSet:
        loaded: list[PolicyException] = []
        invalid: dict[str, str] = {}
        for obj in objects:
            metadata = obj.get("metadata") or {}
            ref = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
            try:
                loaded.append(exception_from_object({"apiVersion": obj.get("apiVersion"),
                                                     "kind": "PolicyException", **obj}))
            except PolicyLoadError as error:
                invalid[ref] = str(error)
                marker = (ref, str(metadata.get("resourceVersion", "")), str(error))
                if marker not in self._logged:
                    self._logged.add(marker)
                    log.error("PolicyException %s does not load and exempts nothing: %s",
                              ref, error)
        self.invalid = invalid
        exceptions = ExceptionSet(loaded)
        self.registry.set_source(SOURCE, exceptions)
        return exceptions
