"""examples/cluster-state.yaml loads in `audit`, `report` and `quota` as a user would run
them, and shows what it says it shows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from .tools import BIN, REPO, environment

EXAMPLE = "examples/cluster-state.yaml"


def edgewarden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "edgewarden"), *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=REPO, env=environment())


def test_the_example_is_a_kubectl_list_of_namespaces_services_and_ingresses() -> None:
    document = yaml.safe_load((REPO / EXAMPLE).read_text())
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    kinds = {item["kind"] for item in document["items"]}
    assert kinds == {"Namespace", "Service", "Ingress"}


def test_audit_reads_it_and_finds_the_legacy_namespace() -> None:
    result = edgewarden("audit", "--cluster-state", EXAMPLE, "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["objects"] == 17
    denied = {
        (r["resource"]["namespace"], r["resource"]["name"], f["policy"])
        for r in report["results"] for f in r["findings"] if f["result"] == "deny"
    }
    assert denied == {
        ("legacy-billing", "billing-admin", "deny-nodeport-in-production"),
        ("legacy-billing", "billing-legacy-ip", "deny-external-ips"),
        ("legacy-billing", "billing", "require-ingress-tls-in-production"),
    }
    patched = {r["resource"]["name"] for r in report["results"]
               for f in r["findings"] if f["result"] == "patch"}
    assert patched == {"billing-api"}, "staging may stay public; the others are internal"
    over = [(n["namespace"], n["policy"]) for n in report["namespaceFindings"]]
    assert over == [("legacy-billing", "limit-loadbalancers-per-namespace")]
    failing = edgewarden("audit", "--cluster-state", EXAMPLE, "--fail-on-violation")
    assert failing.returncode == 1, failing.stderr


def test_report_writes_the_exposure_page(tmp_path: Path) -> None:
    page = tmp_path / "exposure.html"
    result = edgewarden("report", "--cluster-state", EXAMPLE, "--html", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    for namespace in ("shop-production", "shop-staging", "data-platform", "legacy-billing"):
        assert namespace in html


def test_quota_backs_each_cap_including_the_raised_one() -> None:
    result = edgewarden("quota", "--cluster-state", EXAMPLE)
    assert result.returncode == 0, result.stderr
    quotas = {
        q["metadata"]["namespace"]: q["spec"]["hard"]["services.loadbalancers"]
        for q in yaml.safe_load_all(result.stdout) if q
    }
    assert quotas == {"shop-production": "2", "shop-staging": "2", "data-platform": "3",
                      "legacy-billing": "2"}
