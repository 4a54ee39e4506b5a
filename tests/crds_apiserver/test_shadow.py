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


def shadow_report(running: Edgewarden, namespace: str) -> dict[str, Any] | None:
    found = running.kubectl("-n", namespace, "get", "policyreports.wgpolicyk8s.io",
                            "-l", "edgewarden.dev/shadow=true", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items[0] if items else None


def test_a_shadow_policy_admits_and_reports_what_it_would_refuse(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    running = edgewarden(now=START, audit_interval_seconds=1.0)
    namespace = test_namespace(environment="development")
    running.register(namespace)
    running.kubectl("apply", "-f", "-", input=candidate(shadow=True))
    try:
        condition = eventually(
            lambda: next((c for c in (running.get("policy.edgewarden.dev", CANDIDATE)
                                      .get("status") or {}).get("conditions") or []
                          if c["type"] == "Ready"), None),
            timeout=30, what="the candidate's Ready condition")
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

        # Promotion is one field: the next NodePort is refused by the same policy.
        running.kubectl("apply", "-f", "-", input=candidate(shadow=False))
        eventually(lambda: running.server.metric("edgewarden_shadow_policies_loaded") == 0,
                   timeout=30, what="the promotion")
        refused = running.kubectl("-n", namespace, "create", "service", "nodeport", "api",
                                  "--tcp=80:8080", check=False)
        assert refused.returncode != 0 and MESSAGE in refused.stderr
    finally:
        running.kubectl("delete", "policy.edgewarden.dev", CANDIDATE, "--ignore-not-found")
