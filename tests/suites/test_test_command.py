"""`edgewarden test` as CI uses it: many paths, -o text|json|junit, and --case to run a few."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support import cli

REPO = Path(__file__).resolve().parents[2]
NODEPORT_SUITE = REPO / "policies" / "deny-nodeport-in-production.test.yaml"
EXTERNAL_IPS_SUITE = REPO / "policies" / "deny-external-ips.test.yaml"

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: deny-nodeport}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: no NodePort
"""
SUITE = """\
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyTest
metadata: {name: nodeports}
spec:
  policies: [policy.yaml]
  cases:
    - name: NodePort is denied
      object: {apiVersion: v1, kind: Service, metadata: {name: a, namespace: x},
               spec: {type: NodePort}}
      expect: {allowed: false, violations: [deny-nodeport]}
    - name: ClusterIP is allowed (wrongly expected denied)
      object: {apiVersion: v1, kind: Service, metadata: {name: b, namespace: x},
               spec: {type: ClusterIP}}
      expect: {allowed: false}
"""


def run(*args: str) -> Result:
    return cli.run("test", *args)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "nodeports.test.yaml").write_text(SUITE)
    return tmp_path / "nodeports.test.yaml"


def test_many_paths_run_every_suite_once() -> None:
    result = run(str(NODEPORT_SUITE), str(EXTERNAL_IPS_SUITE), str(NODEPORT_SUITE), "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["suites"]] == ["deny-nodeport-in-production",
                                                     "deny-external-ips"]
    assert report["summary"]["ok"] is True
    assert report["summary"]["cases"] == sum(len(s["cases"]) for s in report["suites"]) > 0


def test_json_names_each_failing_case_and_why_and_exits_1(suite: Path) -> None:
    result = run(str(suite), "-o", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["summary"] == {"suites": 1, "cases": 2, "passed": 1, "failed": 1,
                                 "suiteErrors": 0, "ok": False}
    (failing,) = [c for s in report["suites"] for c in s["cases"] if not c["passed"]]
    assert failing["name"] == "ClusterIP is allowed (wrongly expected denied)"
    assert failing["line"] == 11
    assert failing["failures"] == ["allowed: expected False, got True"]


def test_junit_goes_to_stdout_or_to_a_file_in_a_new_folder(suite: Path, tmp_path: Path) -> None:
    printed = run(str(suite), "-o", "junit")
    assert printed.exit_code == 1
    root = ET.fromstring(printed.stdout.split("\n", 1)[1])
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    out = tmp_path / "results" / "suites.xml"
    written = run(str(suite), "-o", "junit", "--out", str(out))
    assert written.exit_code == 1 and written.stdout == ""
    assert ET.parse(out).getroot().get("failures") == "1"
    assert "2 case(s) in 1 suite(s)" in written.stderr


def test_case_runs_only_the_cases_its_glob_matches(suite: Path) -> None:
    result = run(str(suite), "--case", "NodePort*", "-o", "json")
    assert result.exit_code == 0, "the failing case was not selected"
    report = json.loads(result.stdout)
    assert [c["name"] for s in report["suites"] for c in s["cases"]] == ["NodePort is denied"]
    either = run(str(suite), "--case", "*denied", "--case", "*expected*", "-o", "json")
    assert json.loads(either.stdout)["summary"]["cases"] == 2


def test_case_leaves_out_suites_with_no_selected_case(suite: Path) -> None:
    result = run(str(suite), str(EXTERNAL_IPS_SUITE), "--case", "*externalIPs*", "-o", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["suites"]] == ["deny-external-ips"]


def test_a_case_pattern_that_matches_nothing_is_an_error_not_a_pass(suite: Path) -> None:
    result = run(str(suite), "--case", "NodePrt*")
    assert result.exit_code == 2
    assert f"no test case under {suite} matches --case 'NodePrt*'" in result.stderr


def test_no_suite_under_a_folder_is_an_error(tmp_path: Path) -> None:
    result = run(str(tmp_path))
    assert result.exit_code == 2
    assert "no test suites (*.test.yaml) found under" in result.stderr


def test_text_output_has_no_out_file(suite: Path, tmp_path: Path) -> None:
    result = run(str(suite), "--out", str(tmp_path / "x.txt"))
    assert result.exit_code == 2
    assert "--out needs -o json or -o junit" in result.stderr


def test_the_junit_option_still_writes_beside_the_text(suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "junit.xml"
    result = run(str(suite), "--junit", str(out))
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.stdout
    assert ET.parse(out).getroot().get("tests") == "2"
