"""A policy that would fail on every request is refused at load (issue 9), with file, line,
the expression and a suggestion — through the loader and through `edgewarden validate`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from webhook.errors import PolicyLoadError
from webhook.policy.load.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: probe
spec:
  match:
    kinds: [{kinds}]
  variables:
    - name: serviceType
      expression: "has(object.spec.type) ? object.spec.type : 'ClusterIP'"
  validations:
    - expression: "{expression}"
      messageExpression: "{message}"
"""


def write(tmp_path: Path, expression: str, kinds: str = "Service", message: str = "'no'") -> Path:
    file = tmp_path / "probe.yaml"
    file.write_text(POLICY.format(kinds=kinds, expression=expression, message=message))
    return file


def problems(file: Path) -> list[str]:
    with pytest.raises(PolicyLoadError) as caught:
        load_policies(file)
    return [str(problem) for problem in caught.value.problems]


def test_an_unknown_function_is_refused_with_file_line_and_expression(tmp_path: Path) -> None:
    file = write(tmp_path, "isIPv4(object.spec.clusterIP)")
    (problem,) = problems(file)
    assert problem.startswith(f"{file}:12: spec.validations[0].expression: CEL: ")
    assert "unknown function isIPv4()" in problem
    assert "`isIPv4(object.spec.clusterIP)`" in problem


def test_a_misspelt_field_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "object.spec.typ != 'NodePort'"))
    assert ":12: spec.validations[0].expression: CEL: Service has no field spec.typ" in problem
    assert "(did you mean spec.type?)" in problem
    assert "`object.spec.typ != 'NodePort'`" in problem


def test_a_presence_test_of_a_field_the_kind_lacks_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "!has(object.spec.externalIP)"))
    assert "Service has no field spec.externalIP (did you mean spec.externalIPs?)" in problem


def test_fields_of_list_elements_are_checked_inside_comprehensions(tmp_path: Path) -> None:
    file = write(tmp_path, "object.spec.rules.all(r, r.hots != '')", kinds="Ingress")
    found = problems(file)
    assert any(":10: spec.variables[0].expression" in p for p in found)  # spec.type, as below
    message = "Ingress has no field spec.rules[].hots (did you mean spec.rules[].host?)"
    assert any(":12: spec.validations[0].expression" in p and message in p for p in found)


def test_a_field_must_exist_in_every_kind_the_policy_matches(tmp_path: Path) -> None:
    file = write(tmp_path, "object.spec.type != 'NodePort'", kinds="Service, Ingress")
    variable, validation = problems(file)
    assert ":10: spec.variables[0].expression: CEL: Ingress has no field spec.type" in variable
    assert ":12: spec.validations[0].expression: CEL: Ingress has no field spec.type" in validation


def test_selecting_a_field_of_a_list_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "object.spec.ports.port == 80"))
    assert "Service spec.ports is a list of object, it has no field 'port'" in problem


def test_a_validation_that_cannot_yield_a_bool_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "variables.serviceType"))
    assert "a validation must yield a bool, but this one yields string" in problem


def test_a_message_expression_that_cannot_yield_a_string_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "true", message="size(object.spec.ports)"))
    assert ":13: spec.validations[0].messageExpression: CEL: " in problem
    assert "a messageExpression must yield a string, but this one yields int" in problem


def test_an_undeclared_variable_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "variables.serviceTyp == 'NodePort'"))
    assert "variables.serviceTyp is not defined (did you mean variables.serviceType?)" in problem


@pytest.mark.parametrize(
    "expression",
    [
        # Labels and annotations are maps: any key is a field.
        "object.metadata.labels.foo == 'a' || object.metadata.labels['foo'] == 'b'",
        "'team' in object.metadata.annotations",
        # targetPort is an int or a string.
        "object.spec.ports.all(p, p.targetPort == 8080 || p.targetPort == 'http')",
        "namespaceObject.metadata.labels['environment'] == 'prod' && request.operation != ''",
        "request.userInfo.groups.exists(g, g == 'admins') || variables.serviceType != ''",
        "object.spec.ports[0].port == 80 && object.metadata['name'] != ''",
        "oldObject == null || oldObject.spec.type == object.spec.type",
    ],
)
def test_valid_reads_load(tmp_path: Path, expression: str) -> None:
    assert len(load_policies(write(tmp_path, expression))) == 1


def validate(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEWARDEN, "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_edgewarden_validate_reports_the_issue_examples(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cidr = write(tmp_path / "a", "isIPv4(object.spec.clusterIP)")
    typo = write(tmp_path / "b", "object.spec.typ != 'NodePort'")
    result = validate(cidr, typo)
    assert result.returncode == 1, result.stdout
    assert f"{cidr}:12: spec.validations[0].expression: CEL: unknown function isIPv4()" in (
        result.stderr
    )
    assert f"{typo}:12: spec.validations[0].expression: CEL: Service has no field spec.typ" in (
        result.stderr
    )
    assert "did you mean spec.type?" in result.stderr
    assert "2 problem(s); nothing was loaded." in result.stderr


@pytest.mark.parametrize(
    "path",
    ["policies/", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("examples/*/*[!t].yaml"))],
)
def test_shipped_policies_and_examples_pass_the_checks(path: str) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert "problem" not in result.stderr


def test_the_packaged_schemas_are_what_the_script_generates() -> None:
    script = ROOT / "scripts" / "trim_k8s_schemas.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_schema_script_notices_a_stale_copy(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    (copy / "webhook" / "policy" / "schemas").mkdir(parents=True)
    script = copy / "scripts" / "trim_k8s_schemas.py"
    script.write_text((ROOT / "scripts" / "trim_k8s_schemas.py").read_text())
    stale = copy / "webhook" / "policy" / "schemas" / "core.v1.Service.json"
    stale.write_text(textwrap.dedent("{}\n"))
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "core.v1.Service.json is not what" in result.stderr


@pytest.mark.parametrize(("pattern", "reason"), [
    ("^(?=api)", "invalid perl operator: (?="),  # lookahead: Python's re has it, RE2 not
    ("^(a)\\\\1$", "invalid escape sequence: \\1"),  # a backreference
    ("^a*+$", "bad repetition operator: *+"),  # possessive: Python 3.11 reads it, RE2 not
    ("^web\\\\Z", "invalid escape sequence: \\Z"),  # RE2 spells the end of text \\z
])
def test_a_regex_literal_re2_refuses_is_refused_at_load_with_re2s_reason(
    tmp_path: Path, pattern: str, reason: str
) -> None:
    # A raw CEL string: the pattern reaches RE2 as written (YAML's "\\\\" is one backslash).
    (problem,) = problems(write(tmp_path, f"object.metadata.name.matches(r'{pattern}')"))
    assert ":12: spec.validations[0].expression: CEL: " in problem
    assert "invalid matches argument: not an RE2 pattern, the regular expressions " \
        "Kubernetes uses" in problem
    assert reason in problem


def test_a_regex_literal_re2_reads_loads(tmp_path: Path) -> None:
    load_policies(write(tmp_path, "object.metadata.name.matches('^[a-z0-9]([-a-z0-9]*"
                                  "[a-z0-9])?$') && !object.metadata.name.matches(r'\\\\d{9}')"))
