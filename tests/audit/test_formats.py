"""Each machine format parses back and validates against its published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import xmlschema
import yaml

from .helpers import CLUSTER, POLICIES, RENDERED, SCHEMAS, run


def output(fmt: str, *source: str) -> str:
    args = source or ("check", "-f", RENDERED)
    return run(*args, "--policies", POLICIES, "-o", fmt).stdout


def test_json_report_follows_its_documented_schema() -> None:
    schema = json.loads((SCHEMAS / "report.schema.json").read_text())
    for args in (("check", "-f", RENDERED), ("audit", "--cluster-state", CLUSTER)):
        report = json.loads(output("json", *args))
        jsonschema.validate(report, schema)
    assert report["kind"] == "AuditReport"


def test_junit_validates_against_the_junit_xsd_with_one_suite_per_policy() -> None:
    schema = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))
    text = output("junit")
    schema.validate(text)
    document = schema.to_dict(text)
    suites = {suite["@name"]: suite for suite in document["testsuite"]}
    assert "deny-nodeport-in-production" in suites
    limit = suites["limit-loadbalancers-per-namespace"]
    failed = [case for case in limit["testcase"] if "failure" in case]
    assert [case["@name"] for case in failed] == ["Service/production/shop-metrics"]
    assert document["@failures"] == "3"


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    sarif = json.loads(output("sarif"))
    jsonschema.Draft4Validator(schema).validate(sarif)
    run_ = sarif["runs"][0]
    rules = {rule["id"]: rule for rule in run_["tool"]["driver"]["rules"]}
    assert rules["deny-nodeport-in-production"]["shortDescription"]["text"].startswith("NodePort")
    levels = {(r["ruleId"], r["level"]) for r in run_["results"]}
    assert ("deny-nodeport-in-production", "error") in levels
    assert ("audit-external-traffic-policy", "note") in levels
    nodeport = next(r for r in run_["results"] if r["ruleId"] == "deny-nodeport-in-production")
    physical = nodeport["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("shop-rendered.yaml")
    assert physical["region"]["startLine"] == 19


def test_sarif_warn_results_are_warnings() -> None:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    sarif = json.loads(output("sarif", "audit", "--cluster-state", CLUSTER))
    jsonschema.Draft4Validator(schema).validate(sarif)
    levels = {(r["ruleId"], r["level"]) for r in sarif["runs"][0]["results"]}
    assert ("require-ingress-class", "warning") in levels


def test_policyreport_is_one_report_per_namespace_plus_a_cluster_report() -> None:
    listed = yaml.safe_load(output("policyreport", "audit", "--cluster-state", CLUSTER))
    assert listed["kind"] == "List"
    reports = {(r["kind"], r["metadata"]["name"]): r for r in listed["items"]}
    production = reports[("PolicyReport", "edgewarden-production")]
    assert production["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert production["metadata"]["namespace"] == "production"
    results = {(r["policy"], r["resources"][0]["name"]): r["result"] for r in production["results"]}
    assert results[("deny-nodeport-in-production", "shop-admin")] == "fail"
    assert results[("internal-loadbalancer", "shop-api")] == "warn"
    assert results[("deny-nodeport-in-production", "shop-web")] == "pass"
    assert production["summary"]["fail"] == sum(
        1 for r in production["results"] if r["result"] == "fail"
    )
    cluster = reports[("ClusterPolicyReport", "edgewarden")]
    over = cluster["results"][0]
    assert over["resources"][0] == {"apiVersion": "v1", "kind": "Namespace", "name": "production"}
    assert over["result"] == "fail"


def test_output_written_to_a_file_keeps_stdout_clean(tmp_path: Path) -> None:
    out = tmp_path / "results.sarif"
    result = run("check", "-f", RENDERED, "--policies", POLICIES, "-o", "sarif", "--out", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"
