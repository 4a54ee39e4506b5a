"""`edgewarden audit`: what already runs, with limits reported per namespace."""

from __future__ import annotations

import json

import pytest

from .helpers import CLUSTER, POLICIES, run


def audit_json(*args: str) -> tuple[int, dict]:
    result = run("audit", "--cluster-state", CLUSTER, "--policies", POLICIES, "-o", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_a_namespace_over_its_cap_is_reported_once_not_each_service_denied() -> None:
    _, report = audit_json()
    limit_denials = [f for r in report["results"] for f in r["findings"] if f["source"] == "limit"]
    assert limit_denials == []
    [over] = report["namespaceFindings"]
    assert over["policy"] == "limit-loadbalancers-per-namespace"
    assert over["namespace"] == "production"
    assert "3 counted Services" in over["message"] and "cap of 2" in over["message"]


def test_limit_status_is_reported_for_every_namespace_where_the_cap_applies() -> None:
    _, report = audit_json()
    limits = {(s["namespace"], s["count"], s["max"], s["over"]) for s in report["limits"]}
    assert limits == {
        ("production", 3, 2, True),
        ("staging", 1, 2, False),
        ("team-a", 1, 1, False),  # at the annotation's cap, not over it
    }


def test_existing_objects_are_judged_by_their_validations() -> None:
    _, report = audit_json()
    admin = next(r for r in report["results"] if r["resource"]["name"] == "shop-admin")
    assert [(f["policy"], f["result"]) for f in admin["findings"] if f["result"] != "pass"] == [
        ("deny-nodeport-in-production", "deny")
    ]
    assert report["summary"]["skipped"] == {"ConfigMap": 1}


def test_audit_exits_0_with_violations_unless_asked_to_fail() -> None:
    code, report = audit_json()
    assert report["summary"]["failed"] is True
    assert code == 0
    code, _ = audit_json("--fail-on-violation")
    assert code == 1


def test_audit_text_names_the_namespace_over_its_cap() -> None:
    result = run("audit", "--cluster-state", CLUSTER, "--policies", POLICIES)
    assert result.exit_code == 0
    assert "Namespace/production" in result.stdout
    assert "over the cap of 2" in result.stdout


def test_an_unreadable_cluster_state_is_a_user_error() -> None:
    result = run("audit", "--cluster-state", "missing-state.yaml", "--policies", POLICIES)
    assert result.exit_code == 2
    assert "cluster state: missing-state.yaml: no such file or folder" in result.stderr


def test_the_over_cap_finding_points_at_the_namespace_in_the_state_file() -> None:
    result = run("audit", "--cluster-state", CLUSTER, "--policies", POLICIES, "-o", "sarif")
    over = next(
        r
        for r in json.loads(result.stdout)["runs"][0]["results"]
        if r["ruleId"] == "limit-loadbalancers-per-namespace"
    )
    assert over["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    assert over["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "Namespace/production"
    )


@pytest.mark.usefixtures("no_cluster_env")
def test_without_cluster_state_or_a_reachable_cluster_audit_says_what_to_do() -> None:
    result = run("audit", "--policies", POLICIES)
    assert result.exit_code == 2
    assert "--cluster-state" in result.stderr
    assert "Traceback" not in result.output
