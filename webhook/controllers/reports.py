"""Keeping the cluster's PolicyReports equal to what the last audit found.

What the audit wants (one report per namespace with findings, split at the size bound, and
the ClusterPolicyReport) is compared with the reports edgewarden wrote before (its label);
each is created, replaced when its content changed, or left alone, and every report of ours
that is no longer wanted (the namespace is gone, its findings are gone, a split has fewer
parts) is deleted. Content is compared without the results' timestamps, through a digest
kept in an annotation, so an unchanged cluster costs a LIST and no write.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.object_api import ApiFailure, ObjectApi
from webhook.offline.reports.policyreport import MANAGED_BY

log = logging.getLogger("edgewarden.controllers")

DIGEST = "edgewarden.dev/content-digest"
SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())

Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class Reconciled:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: list[str] = field(default_factory=list)


def digest(document: dict[str, Any]) -> str:
    """sha256 of what a report says, its results' timestamps left out."""
    results = [{k: v for k, v in r.items() if k != "timestamp"}
               for r in document.get("results") or []]
    content = {"summary": document.get("summary"), "results": results}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _key(document: dict[str, Any]) -> Key:
    metadata = document.get("metadata") or {}
    return (str(document.get("kind")), str(metadata.get("namespace") or ""),
            str(metadata.get("name")))


class ReportWriter:
    def __init__(self, namespaced: ObjectApi, cluster: ObjectApi) -> None:
        self._apis = {namespaced.kind.kind: namespaced, cluster.kind.kind: cluster}
        self._absent_logged = False

    def reconcile(self, documents: Iterable[dict[str, Any]]) -> Reconciled:
        outcome = Reconciled()
        try:
            existing = {_key(d): d for api in self._apis.values()
                        for d in api.list(label_selector=SELECTOR) if _ours(d)}
        except ApiFailure as error:
            if error.not_found:
                if not self._absent_logged:
                    self._absent_logged = True
                    log.warning("the PolicyReport CRDs (wgpolicyk8s.io) are not installed: "
                                "reports are not written (the metrics still are)")
                return outcome
            outcome.failed.append(f"listing reports: {error}")
            return outcome
        self._absent_logged = False
        wanted: set[Key] = set()
        for document in documents:
            key = _key(document)
            wanted.add(key)
            self._write(document, existing.get(key), outcome)
        for key in sorted(existing):
            if key in wanted:
                continue
            kind, namespace, name = key
            try:
                self._apis[kind].delete(name, namespace or None)
                outcome.deleted += 1
            except ApiFailure as error:
                if not error.not_found:
                    outcome.failed.append(f"deleting {kind} {namespace}/{name}: {error}")
        for failure in outcome.failed:
            log.warning("PolicyReports: %s", failure)
        return outcome

    def _write(self, document: dict[str, Any], current: dict[str, Any] | None,
               outcome: Reconciled) -> None:
        body = copy.deepcopy(document)
        metadata = body.setdefault("metadata", {})
        content = digest(body)
        metadata.setdefault("annotations", {})[DIGEST] = content
        kind, namespace, name = _key(body)
        api = self._apis[kind]
        try:
            if current is None:
                api.create(body)
                outcome.created += 1
                return
            if ((current.get("metadata") or {}).get("annotations") or {}).get(DIGEST) == content:
                outcome.unchanged += 1
                return
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
            api.replace(body)
            outcome.replaced += 1
        except ApiFailure as error:
            # A conflict (written meanwhile), a namespace being deleted: the next run retries.
            outcome.failed.append(f"writing {kind} {namespace}/{name}: {error}")


def _ours(document: dict[str, Any]) -> bool:
    labels = (document.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())
