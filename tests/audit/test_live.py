"""`audit`, `report` and `quota` against a live cluster: one paged LIST of each kind.

The API double answers the three cluster-wide LISTs as the real one does: items without
kind/apiVersion, paged with ``limit``/``continue``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kubeapi import KubeApi
from tests.support import namespace, service

from .helpers import POLICIES, run


@pytest.fixture
def live_cluster(kube_api: KubeApi, kubeconfig_env: Path) -> KubeApi:
    """Production holds three LoadBalancers (a cap of 2) and a NodePort; ``$KUBECONFIG``
    points at it."""
    kube_api.max_page_size = 2  # small pages so paging is exercised whatever limit is asked
    kube_api.create(namespace(name="production", labels={"environment": "production"}))
    for i in range(3):
        kube_api.create(
            service(name=f"lb-{i}", namespace="production", type="LoadBalancer",
                    ports=[{"port": 443}])
        )
    kube_api.create(
        service(name="admin", namespace="production", type="NodePort",
                ports=[{"port": 80, "nodePort": 30080}])
    )
    return kube_api


def test_live_audit_lists_every_page_and_reports_the_namespace_over_its_cap(
    live_cluster: KubeApi,
) -> None:
    result = run("audit", "--policies", POLICIES, "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["objects"] == 4
    [over] = report["namespaceFindings"]
    assert "3 counted Services" in over["message"]
    admin = next(r for r in report["results"] if r["resource"]["name"] == "admin")
    assert admin["location"] is None
    assert ("deny-nodeport-in-production", "deny") in {
        (f["policy"], f["result"]) for f in admin["findings"]
    }
    assert [r.params.get("continue") for r in live_cluster.lists("services")] == [None, "2"]


@pytest.mark.usefixtures("live_cluster")
def test_live_quota_and_report(tmp_path: Path) -> None:
    result = run("quota", "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    assert "services.loadbalancers: '2'" in result.stdout
    page = tmp_path / "page.html"
    assert run("report", "--html", str(page), "--policies", POLICIES).exit_code == 0
    assert "3 / 2 over cap" in page.read_text()


def test_live_audit_without_rights_says_what_rbac_it_needs(live_cluster: KubeApi) -> None:
    live_cluster.forbid("list")
    result = run("audit", "--policies", POLICIES)
    assert result.exit_code == 2
    assert "HTTP 403" in result.stderr
    assert "list on namespaces, ingresses, services and policyexceptions" in result.stderr
