"""`check`, the suites runner and the webhook over HTTP give the same verdict, warnings,
audit annotations and patch for any Service, Ingress, Namespace and operation — nulls and
odd types included — and none of them ever raises or answers with an internal error.

The HTTP path is the API server's: /mutate, the patch applied with an independent JSONPatch
implementation (python-jsonpath, not the jsonpatch package the engine uses), then /validate
with the patched object. Requests are dry runs, so no limit place is reserved between cases.
The number of generated cases is EDGEWARDEN_DIFFERENTIAL_EXAMPLES (10,000 by default).
"""

from __future__ import annotations

import base64
import copy
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from jsonpath import JSONPatch

from tests.admission.harness import (
    DEFAULT_POLICIES,
    SNI,
    RunningServer,
    base_settings,
    start_server,
)
from webhook.certs.files import GeneratedCertificates
from webhook.cluster.memory import MemoryCluster
from webhook.errors import ManifestError
from webhook.offline.manifests import parse_manifests
from webhook.offline.results import Outcome
from webhook.offline.scan import check_manifests
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.suites.model import Expectation
from webhook.suites.model import TestCase as SuiteCase
from webhook.suites.runner import case_request

from .strategies import Case, cases

EXAMPLES = int(os.environ.get("EDGEWARDEN_DIFFERENTIAL_EXAMPLES", "10000"))
POLICIES = load_policies(DEFAULT_POLICIES)
ENGINE = Engine(POLICIES)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    warnings: tuple[str, ...] = ()
    audit: tuple[tuple[str, str], ...] = ()
    patch: tuple[str, ...] = ()  # JSON of each operation

    def comparable(self) -> tuple[Any, ...]:
        # A denied request is refused whatever else was said: only the verdict counts.
        if not self.allowed:
            return (False,)
        return (True, tuple(sorted(self.warnings)), self.audit, self.patch)


def _ops(patch: Any) -> tuple[str, ...]:
    return tuple(orjson.dumps(op, option=orjson.OPT_SORT_KEYS).decode() for op in patch)


# ---- path 1: the suites runner ------------------------------------------------------------


def runner_verdict(case: Case) -> Verdict:
    test_case = SuiteCase(
        name="generated", line=1, operation=case.operation, namespace=case.namespace_name,
        object=case.object, old_object=case.old_object, dry_run=True,
        username="jane@example.com", groups=("developers",), expect=Expectation(),
    )
    cluster = MemoryCluster([case.namespace, *case.existing])
    decision = ENGINE.evaluate(case_request(test_case), cluster)
    return Verdict(decision.allowed, tuple(decision.warnings),
                   tuple(sorted(decision.audit_annotations.items())), _ops(decision.patch))


# ---- path 2: `check` (CREATEs only, as the command judges manifests) ------------------------


def check_verdict(case: Case) -> Verdict | None:
    """None when `check` refuses the input as a manifest (a clear user error, not a verdict)."""
    text = yaml.safe_dump_all([case.namespace, case.object])
    try:
        manifests = parse_manifests(text, "generated.yaml")
    except ManifestError:
        return None
    report = check_manifests(manifests, POLICIES, engine=ENGINE)
    (result,) = report.objects
    warnings = [f"{f.policy}: {f.message}" for f in result.findings if f.outcome is Outcome.WARN]
    audit: dict[str, str] = {}
    for finding in result.findings:
        if finding.outcome is Outcome.AUDIT:
            previous = audit.get(finding.policy)
            audit[finding.policy] = f"{previous}; {finding.message}" if previous else (
                finding.message)
    patch = [op for f in result.findings if f.outcome is Outcome.PATCH for op in f.patch]
    return Verdict(result.allowed, tuple(warnings), tuple(sorted(audit.items())), _ops(patch))


# ---- path 3: the webhook, called as the API server calls it --------------------------------


def _review(case: Case, obj: Any) -> dict[str, Any]:
    subject = obj if obj is not None else case.old_object
    metadata = subject.get("metadata") if isinstance(subject, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = subject["kind"]
    group, resource = ("networking.k8s.io", "ingresses") if kind == "Ingress" else ("",
                                                                                  "services")
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "d1ff0000-0000-4000-8000-000000000001",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "name": name if isinstance(name, str) else "",
            "namespace": case.namespace_name,
            "operation": case.operation,
            "userInfo": {"username": "jane@example.com", "groups": ["developers"]},
            "object": obj, "oldObject": case.old_object, "dryRun": True,
        },
    }


def _call(client: Any, path: str, review: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(path, content=orjson.dumps(review), extensions=SNI,
                         headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    response: dict[str, Any] = answer.json()["response"]
    assert "InternalError" not in str(response.get("status", {})), response
    return response


def http_verdict(client: Any, case: Case) -> Verdict:
    mutated = _call(client, "/mutate", _review(case, case.object))
    if not mutated["allowed"]:
        return Verdict(False)
    patch: list[Any] = []
    obj = case.object
    if "patch" in mutated:
        assert mutated["patchType"] == "JSONPatch"
        patch = orjson.loads(base64.b64decode(mutated["patch"]))
        obj = JSONPatch(patch).apply(copy.deepcopy(obj))
    validated = _call(client, "/validate", _review(case, obj))
    warnings = (*mutated.get("warnings", ()), *validated.get("warnings", ()))
    audit = {**mutated.get("auditAnnotations", {}), **validated.get("auditAnnotations", {})}
    return Verdict(bool(validated["allowed"]), tuple(warnings), tuple(sorted(audit.items())),
                   _ops(patch))


@pytest.fixture(scope="module")
def server(certificates: GeneratedCertificates,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("differential")
    empty = tmp / "cluster.yaml"
    empty.write_text("apiVersion: v1\nkind: List\nitems: []\n")
    running = start_server(
        base_settings(certificates, tmp, policies=(DEFAULT_POLICIES,), cluster_state=empty,
                      audit_log=Path(os.devnull)),
        certificates.ca_file,
    )
    yield running
    running.stop()


def test_check_the_suites_runner_and_the_webhook_agree(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Thousands of expected evaluation errors (odd types) would each be a log record here.
    caplog.set_level(logging.CRITICAL, logger="edgewarden.decisions")
    cluster = server.runtime.state.cluster
    assert isinstance(cluster, MemoryCluster)
    judged = {"http": 0, "check": 0}

    with server.client() as client:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(cases())
        def agree(case: Case) -> None:
            for obj in (case.namespace, *case.existing):
                cluster.add(obj)
            try:
                offline = runner_verdict(case)
                online = http_verdict(client, case)
                judged["http"] += 1
                assert online.comparable() == offline.comparable(), (online, offline)
                if case.operation == "CREATE" and not case.existing:
                    checked = check_verdict(case)
                    if checked is not None:
                        judged["check"] += 1
                        assert checked.comparable() == offline.comparable(), (checked, offline)
            finally:
                for obj in case.existing:
                    cluster.remove("Service", case.namespace_name, obj["metadata"]["name"])
                cluster.remove("Namespace", "", case.namespace_name)

        agree()
    print(f"\ndifferential: {judged['http']} cases through the runner and HTTP, "
          f"{judged['check']} of them through check too")
    assert judged["http"] >= EXAMPLES * 0.9
