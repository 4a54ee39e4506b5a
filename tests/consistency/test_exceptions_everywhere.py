"""Expiry means the same everywhere (kyverno#17474 is the bug this rules out): `audit`,
`check` and admission (the real ASGI app, stamping each review with its clock, /mutate then
/validate as the API server calls them) give the same verdicts for the same objects, with
and without PolicyExceptions, a second before, at, and a second after the expiry instant.
Time comes from an injected clock everywhere; nothing sleeps."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from tests.admission.harness import make_review
from tests.support import ingress, namespace, service
from webhook.admission.app import create_app
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.state import ServerState
from webhook.cluster.memory import MemoryCluster
from webhook.offline.manifests import Manifest
from webhook.offline.results import Outcome, ScanReport
from webhook.offline.scan import audit_objects, check_manifests
from webhook.policy.load.documents import load_exceptions
from webhook.policy.load.loader import load_policies
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet, parse_rfc3339

REPO = Path(__file__).parents[2]
EXPIRES = "2030-06-01T00:00:00Z"
EXPIRY = parse_rfc3339(EXPIRES)
INSTANTS = {"before": EXPIRY - 1, "at": EXPIRY, "after": EXPIRY + 1}

NAMESPACES = [namespace(name="production", labels={"environment": "production"}),
              namespace(name="dev", labels={"environment": "development"})]
OBJECTS = [
    service(name="legacy-gateway", namespace="production", type="NodePort",
            labels={"app": "legacy-gateway"}),
    service(name="other-nodeport", namespace="production", type="NodePort"),
    service(name="metrics", namespace="dev", externalIPs=["203.0.113.7"]),
    service(name="public-api", namespace="dev", type="LoadBalancer"),
    ingress(name="docs", namespace="dev", class_name=None),
]
EXCEPTIONS = f"""
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyException
metadata: {{name: legacy-gateway, namespace: production}}
spec:
  policies: [deny-nodeport-in-production]
  match: {{selector: {{matchLabels: {{app: legacy-gateway}}}}}}
  expiresAt: "{EXPIRES}"
  ticket: PLAT-1
---
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyException
metadata: {{name: metrics-ips, namespace: dev}}
spec:
  policies: [deny-external-ips]
  match: {{names: [metrics]}}
  expiresAt: "{EXPIRES}"
---
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyException
metadata: {{name: public-api, namespace: dev}}
spec:
  policies: [internal-loadbalancer]
  match: {{names: [public-api], kinds: [Service]}}
  expiresAt: "{EXPIRES}"
---
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyException
metadata: {{name: docs-class, namespace: dev}}
spec:
  policies: [require-ingress-class]
  match: {{names: [docs]}}
  expiresAt: "{EXPIRES}"
"""

# object ref -> (allowed, the policies that deny it, the policies an exception held back)
Verdicts = dict[str, tuple[bool, frozenset[str], frozenset[str]]]


def ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def scan_verdicts(report: ScanReport) -> Verdicts:
    return {
        result.resource.ref: (
            result.allowed,
            frozenset(f.policy for f in result.findings if f.outcome is Outcome.DENY),
            frozenset(f.policy for f in result.findings if f.outcome is Outcome.EXEMPT),
        )
        for result in report.objects
    }


def admission_verdicts(exceptions: ExceptionSet, at: float) -> Verdicts:
    policies = load_policies(REPO / "policies")
    state = ServerState(cluster=MemoryCluster(NAMESPACES), metrics=Metrics(),
                        decision_log=DecisionLog(io.BytesIO()), exceptions=exceptions,
                        clock=lambda: at)
    state.install(LoadedPolicies.build(policies, dry_run=False))
    app = create_app(state)

    async def judge_all() -> Verdicts:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://edgewarden") as web:
            return {ref(obj): await admit(web, obj) for obj in OBJECTS}

    return asyncio.run(judge_all())


async def admit(web: httpx.AsyncClient, obj: dict[str, Any]) -> tuple[bool, frozenset[str],
                                                                        frozenset[str]]:
    """/mutate, the patch applied, then /validate: what the API server does."""
    namespace = obj["metadata"]["namespace"]
    mutated = (await web.post("/mutate", json=make_review("CREATE", namespace, obj))).json()
    response = mutated["response"]
    final = copy.deepcopy(obj)
    if "patch" in response:
        final = jsonpatch.apply_patch(final, json.loads(base64.b64decode(response["patch"])))
    validated = (await web.post("/validate", json=make_review("CREATE", namespace, final))).json()
    verdict = validated["response"]
    annotations = {**response.get("auditAnnotations", {}),
                   **verdict.get("auditAnnotations", {})}
    message = verdict.get("status", {}).get("message", "")
    denied = frozenset(p for p in policies_named(message))
    exempted = frozenset(k.removesuffix(".exception") for k in annotations
                         if k.endswith(".exception"))
    return verdict["allowed"] and response["allowed"], denied, exempted


def policies_named(message: str) -> Iterable[str]:
    """The policies of a denial message: ``[policy] text; [policy] text``."""
    for part in message.split("; ["):
        if "]" in part:
            yield part.lstrip("[").split("]", 1)[0]


def manifests(objects: Iterable[dict[str, Any]]) -> list[Manifest]:
    return [Manifest(copy.deepcopy(o), None) for o in objects]


@pytest.fixture(scope="module")
def exceptions(tmp_path_factory: pytest.TempPathFactory) -> ExceptionSet:
    file = tmp_path_factory.mktemp("exceptions") / "exceptions.yaml"
    file.write_text(EXCEPTIONS)
    return load_exceptions(file)


@pytest.mark.parametrize("when", sorted(INSTANTS))
@pytest.mark.parametrize("with_exceptions", [True, False], ids=["exceptions", "none"])
def test_audit_check_and_admission_agree(exceptions: ExceptionSet, when: str,
                                         with_exceptions: bool) -> None:
    at = INSTANTS[when]
    honoured = exceptions if with_exceptions else NO_EXCEPTIONS
    policies = load_policies(REPO / "policies")
    everything = manifests([*NAMESPACES, *OBJECTS])

    audited = scan_verdicts(audit_objects(everything, policies, exceptions=honoured, now=at))
    checked = scan_verdicts(check_manifests(everything, policies, exceptions=honoured, now=at))
    admitted = admission_verdicts(honoured, at)

    assert audited == checked == admitted
    exempted = {r for r, (_, _, held) in admitted.items() if held}
    if with_exceptions and when == "before":
        # Every exception is in force: each object it covers is admitted and says so...
        assert exempted == {ref(o) for o in OBJECTS if o["metadata"]["name"] != "other-nodeport"}
        assert {r for r, (allowed, _, _) in admitted.items() if not allowed} == {
            "Service/production/other-nodeport"}
    else:
        # ...and from the expiry instant on (or without any), none is.
        assert exempted == set()
        assert {r for r, (allowed, _, _) in admitted.items() if not allowed} == {
            "Service/production/legacy-gateway", "Service/production/other-nodeport",
            "Service/dev/metrics"}
