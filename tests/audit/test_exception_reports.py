"""PolicyExceptions in `check`, `audit` and every report format: what each admits, which are
active, expiring within 14 days, or expired (ignored). Every exception has an expiry (the
loader requires one), at most --max-exception-days (90) from the instant judged."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml

from .helpers import CLUSTER, POLICIES, RENDERED, SCHEMAS, run


def stamp(days: float) -> str:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def exception(name: str, namespace: str, policy: str, target: str,
              expires: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"policies": [policy], "match": {"names": [target]},
                               "ticket": f"OPS-{name}", "reason": "legacy", "approvedBy": "alice"}
    if expires is not None:
        spec["expiresAt"] = expires
    return {"apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
def exceptions(tmp_path: Path) -> str:
    documents = [
        exception("admin-nodeport", "production", "deny-nodeport-in-production", "shop-admin",
                  stamp(60)),
        exception("grpc-lb", "production", "limit-loadbalancers-per-namespace", "shop-grpc",
                  stamp(3)),
        exception("old-class", "production", "require-ingress-class", "shop", stamp(-30)),
        exception("api-public", "team-a", "internal-loadbalancer", "api", stamp(45)),
        exception("typo", "staging", "no-such-policy", "preview", stamp(60)),
    ]
    file = tmp_path / "exceptions.yaml"
    file.write_text(yaml.safe_dump_all(documents))
    return str(file)


def audit(exceptions: str, fmt: str) -> str:
    result = run("audit", "--cluster-state", CLUSTER, "--policies", POLICIES,
                 "--exceptions", exceptions, "-o", fmt)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_lists_every_exception_with_its_state_and_what_it_admits(exceptions: str) -> None:
    report = json.loads(audit(exceptions, "json"))
    jsonschema.validate(report, json.loads((SCHEMAS / "report.schema.json").read_text()))
    states = {e["name"]: e["state"] for e in report["exceptions"]}
    assert states == {"admin-nodeport": "active", "grpc-lb": "expiring", "old-class": "expired",
                      "api-public": "active", "typo": "active"}
    listed = {e["name"]: e for e in report["exceptions"]}
    assert listed["typo"]["unknownPolicies"] == ["no-such-policy"]
    assert [(a["resource"], a["would"]) for a in listed["admin-nodeport"]["admits"]] == [
        ("Service/production/shop-admin", "deny")]
    assert [(a["resource"], a["would"]) for a in listed["api-public"]["admits"]] == [
        ("Service/team-a/api", "patch")]
    assert listed["old-class"]["admits"] == [], "an expired exception admits nothing"
    # The namespace over its LoadBalancer cap only by what grpc-lb admits is not over.
    [limit] = [s for s in report["limits"] if s["namespace"] == "production"]
    assert (limit["count"], limit["max"], limit["over"], limit["exempted"]) == (
        3, 2, False, ["shop-grpc"])
    [namespace_finding] = report["namespaceFindings"]
    assert namespace_finding["result"] == "exempt"
    assert namespace_finding["exception"]["name"] == "grpc-lb"


def test_text_shows_the_exceptions_table(exceptions: str) -> None:
    text = audit(exceptions, "text")
    assert "PolicyExceptions" in text
    for word in ("expiring", "expired", "no-such-policy"):
        assert word in text
    row = next(line for line in text.splitlines() if "Service/shop-admin" in line)
    assert "exempted" in row
    assert "production/admin-nodeport (ticket" in text


def test_sarif_suppresses_what_an_exception_admits(exceptions: str) -> None:
    sarif = json.loads(audit(exceptions, "sarif"))
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    [admin] = [r for r in sarif["runs"][0]["results"]
               if r["ruleId"] == "deny-nodeport-in-production"]
    assert admin["level"] == "error"
    [suppression] = admin["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert "production/admin-nodeport (ticket OPS-admin-nodeport" in suppression["justification"]


def test_junit_skips_what_an_exception_admits(exceptions: str) -> None:
    schema = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))
    text = audit(exceptions, "junit")
    schema.validate(text)
    suites = {s["@name"]: s for s in schema.to_dict(text)["testsuite"]}
    nodeport = suites["deny-nodeport-in-production"]
    assert nodeport["@skipped"] == "1" and nodeport["@failures"] == "0"


def test_policyreport_marks_exempted_results_skip(exceptions: str) -> None:
    documents = yaml.safe_load(audit(exceptions, "policyreport"))["items"]
    results = [r for d in documents for r in d["results"] if r["result"] == "skip"]
    admin = next(r for r in results if r["resources"][0]["name"] == "shop-admin")
    assert admin["properties"]["exception"] == "production/admin-nodeport"
    assert admin["properties"]["ticket"] == "OPS-admin-nodeport"
    assert admin["properties"]["would"] == "deny"


def test_html_page_groups_the_exceptions(exceptions: str, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    result = run("report", "--html", str(page), "--cluster-state", CLUSTER,
                 "--policies", POLICIES, "--exceptions", exceptions)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    sections = ["Expiring within 14 days (1)", "Active (3)", "Expired (ignored everywhere) (1)"]
    positions = [html.index(section) for section in sections]
    assert positions == sorted(positions)
    assert "Service/production/shop-admin" in html.split("Policy exceptions")[1]


def test_check_honours_exception_files_and_exception_objects_in_the_input(
    exceptions: str, tmp_path: Path
) -> None:
    for args in (("--exceptions", exceptions), ("-f", exceptions)):
        result = run("check", "-f", RENDERED, "--policies", POLICIES, *args, "-o", "json")
        report = json.loads(result.stdout)
        admin = next(r for r in report["results"] if r["resource"]["name"] == "shop-admin")
        assert admin["allowed"], args
        assert [f["result"] for f in admin["findings"]
                if f["policy"] == "deny-nodeport-in-production"] == ["exempt"]
        assert report["summary"]["skipped"] == {"ConfigMap": 1}, "exceptions are not skipped"


def test_a_malformed_exception_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyException\n"
                   "metadata: {name: x, namespace: y}\nspec: {policies: [p], match: {}}\n")
    result = run("check", "-f", RENDERED, "--policies", POLICIES, "--exceptions", str(bad))
    assert result.exit_code == 2
    assert "spec.match: an exception matches objects by names, selector or both" in result.stderr
