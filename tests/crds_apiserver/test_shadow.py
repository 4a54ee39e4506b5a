"""Issue 24's shadow mode against a real kube-apiserver (these skip without tests/kube's
binaries): a Policy object with ``spec.shadow: true`` that refuses NodePort everywhere never
refuses anything, and what it would have refused shows in /metrics, the decision log and a
shadow PolicyReport; promoting it is one field."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.support import eventually
from tests.support.polling import TimedOut
from webhook.admission.settings import ReloadSettings

from .conftest import Edgewarden

START = time.time()
CANDIDATE = "e2e-shadow-no-nodeport"
MESSAGE = "NodePort opens a port on every node: use an Ingress"


def candidate(*, shadow: bool) -> str:
    return yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": CANDIDATE},
        "spec": {"shadow": shadow, "match": {"kinds": ["Service"]},
                 "validations": [{"expression": "object.spec.type != 'NodePort'",
                                  "message": MESSAGE}]},
    })


def ready_condition(running: Edgewarden) -> dict[str, Any] | None:
    status = running.get("policy.edgewarden.dev", CANDIDATE).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)


def shadow_report(running: Edgewarden, namespace: str) -> dict[str, Any] | None:
    found = running.kubectl("-n", namespace, "get", "policyreports.wgpolicyk8s.io",
                            "-l", "edgewarden.dev/shadow=true", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items[0] if items else None


def stray_nodeports(running: Edgewarden, namespace: str) -> list[str]:
    listed = json.loads(running.kubectl("get", "services", "-A", "-o", "json").stdout)
    return [f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in listed["items"]
            if s["spec"].get("type") == "NodePort" and s["metadata"]["namespace"] != namespace]


def test_a_shadow_policy_admits_and_reports_what_it_would_refuse(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    # The canary judges every object of the shared control plane (other tests leave
    # thousands) and refuses any new denial, so the promotion's refusal depends neither on
    # which objects it samples nor on how many others there are.
    running = edgewarden(now=START, audit_interval_seconds=1.0,
                         reload=ReloadSettings(canary_sample=1_000_000,
                                               max_canary_denial_share=0.0))
    namespace = test_namespace(environment="development")
    running.register(namespace)
    running.kubectl("apply", "-f", "-", input=candidate(shadow=True))
    try:
        condition = eventually(lambda: ready_condition(running), timeout=30,
                               what="the candidate's Ready condition")
        assert condition["status"] == "True"
        assert condition["message"] == "judged in shadow, never enforced"
        eventually(lambda: running.server.metric("edgewarden_shadow_policies_loaded") == 1,
                   timeout=30, what="the candidate to be judged in shadow")

        created = running.kubectl("-n", namespace, "create", "service", "nodeport", "web",
                                  "--tcp=80:8080", check=False)
        assert created.returncode == 0, created.stderr
        assert "Warning" not in created.stderr

        assert running.server.metric("edgewarden_shadow_decisions_total", policy=CANDIDATE,
                                     result="deny") == 1
        assert running.server.metric("edgewarden_shadow_differences_total",
                                     policy=CANDIDATE, result="deny") == 1
        lines = [json.loads(r.getMessage()) for r in caplog.records
                 if r.name == "edgewarden.decisions" and "shadow_difference" in r.getMessage()]
        assert [(line["policy"], line["namespace"], line["name"], line["shadow"],
                 line["enforced"], line["message"]) for line in lines] == [
            (CANDIDATE, namespace, "web", "deny", "allow", MESSAGE)]

        report = eventually(lambda: shadow_report(running, namespace), timeout=60,
                            interval=0.2, what="the shadow PolicyReport")
        assert report["metadata"]["name"] == f"edgewarden-shadow-{namespace}"
        (result,) = report["results"]
        assert (result["policy"], result["result"], result["message"]) == (
            CANDIDATE, "fail", MESSAGE)
        assert result["resources"][0]["name"] == "web"
        assert result["properties"]["enforced"] == "pass"
        assert report["summary"]["fail"] == 1
        ordinary = running.get("-n", namespace, "policyreports.wgpolicyk8s.io",
                               f"edgewarden-{namespace}")
        assert all(r["policy"] != CANDIDATE for r in ordinary["results"])

        # Promotion is one field, and goes through the reload guards: while the Service the
        # shadow report names exists, the canary refuses a set that would deny it. (NodePorts
        # other tests left would be refused too: wait until their namespaces are gone.)
        eventually(lambda: not stray_nodeports(running, namespace), timeout=180,
                   interval=1.0, what="no NodePort Service outside this test's namespace")
        running.kubectl("apply", "-f", "-", input=candidate(shadow=False))
        conditions: list[dict[str, Any] | None] = []

        def refusal() -> dict[str, Any] | None:
            conditions.append(condition := ready_condition(running))
            return condition if condition and condition["status"] == "False" else None

        # The canary judges thousands of objects: on a loaded host that takes a while.
        try:
            refused = eventually(refusal, timeout=90, what="the refused promotion")
        except TimedOut:
            raise AssertionError(f"the promotion was not refused; its Ready condition: "
                                 f"{conditions[-1] if conditions else None}") from None
        assert refused["reason"] == "Refused" and f"Service {namespace}/web" in refused["message"]
        assert running.server.metric("edgewarden_shadow_policies_loaded") == 1
        # Fixed as the report says, the promotion passes: the next NodePort is refused.
        running.kubectl("-n", namespace, "delete", "service", "web")
        # The cache has seen it go once the audit (judging the cache) reports nothing there.
        eventually(lambda: shadow_report(running, namespace) is None, timeout=60,
                   interval=0.2, what="the shadow report to empty")
        running.kubectl("apply", "-f", "-", input=candidate(shadow=False).replace(
            "NodePort opens", "A NodePort opens"))
        eventually(lambda: running.server.metric("edgewarden_shadow_policies_loaded") == 0,
                   timeout=30, what="the promotion")
        denied = running.kubectl("-n", namespace, "create", "service", "nodeport", "api",
                                 "--tcp=80:8080", check=False)
        assert denied.returncode != 0 and "A NodePort opens a port" in denied.stderr
    finally:
        running.kubectl("delete", "policy.edgewarden.dev", CANDIDATE, "--ignore-not-found")
