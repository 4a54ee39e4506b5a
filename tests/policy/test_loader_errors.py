"""Bad policy files are rejected whole, with file, line and field in the message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from webhook.errors import PolicyLoadError
from webhook.policy.load.loader import load_policies

GOOD = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: good
spec:
  match:
    kinds: [Service]
  validations:
    - expression: "object.spec.type != 'NodePort'"
"""


def problems_for(tmp_path: Path, text: str, name: str = "policy.yaml") -> list[str]:
    file = tmp_path / name
    file.write_text(textwrap.dedent(text))
    with pytest.raises(PolicyLoadError) as caught:
        load_policies(file)
    return [str(p) for p in caught.value.problems]


def test_good_policy_loads(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(GOOD)
    policies = load_policies(tmp_path)
    assert [p.name for p in policies.policies] == ["good"]
    assert policies.policies[0].source.line == 4


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("    kinds: [Service]\n", "    kinds: [Service]\n    kind: Service\n")
    (problem,) = problems_for(tmp_path, text)
    assert problem.startswith(
        f"{tmp_path / 'policy.yaml'}:8: spec.match.kind: unknown field 'kind'"
    )


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    text = GOOD.replace("    kinds: [Service]", "    kinds: Service")
    (problem,) = problems_for(tmp_path, text)
    assert ":7: spec.match.kinds: must be of type array, not str" in problem


def test_unknown_enum_value_lists_the_allowed_ones(tmp_path: Path) -> None:
    text = GOOD.replace("spec:\n", "spec:\n  mode: Deny\n")
    (problem,) = problems_for(tmp_path, text)
    assert ":6: spec.mode: 'Deny' is not one of Enforce, Warn, Audit" in problem


def test_cel_that_does_not_compile_is_reported_at_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("object.spec.type != 'NodePort'", "object.spec.type != ")
    (problem,) = problems_for(tmp_path, text)
    assert ":9: spec.validations[0].expression: CEL:" in problem
    assert "parse" in problem


def test_cel_with_an_undeclared_variable_is_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("object.spec.type != 'NodePort'", "obj.spec.type != 'NodePort'")
    (problem,) = problems_for(tmp_path, text)
    assert "spec.validations[0].expression: CEL: undeclared reference to 'obj'" in problem


def test_limit_where_may_only_read_the_object(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  validations:\n    - expression: \"object.spec.type != 'NodePort'\"\n",
        "  limit:\n    where: \"request.operation == 'CREATE'\"\n    max: 2\n",
    )
    (problem,) = problems_for(tmp_path, text)
    assert "spec.limit.where: CEL: request is not available here" in problem


def test_limit_needs_exactly_one_of_max_and_max_expression(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  validations:\n    - expression: \"object.spec.type != 'NodePort'\"\n",
        "  limit:\n    max: 2\n    maxExpression: '3'\n",
    )
    (problem,) = problems_for(tmp_path, text)
    assert "spec.limit: a limit needs exactly one of max or maxExpression" in problem


def test_duplicate_policy_names_across_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(PolicyLoadError) as caught:
        load_policies(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file.endswith("b.yaml") and problem.line == 4
    assert "duplicate policy name 'good' (first defined at" in problem.message


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    (problem,) = problems_for(tmp_path, "apiVersion: edgewarden.dev/v1alpha1\nkind: [Policy\n")
    assert ":3: <document>: YAML syntax error" in problem or ":2: <document>: YAML" in problem


def test_duplicate_yaml_keys_are_an_error_not_silently_merged(tmp_path: Path) -> None:
    text = GOOD.replace("  name: good\n", "  name: good\n  name: other\n")
    (problem,) = problems_for(tmp_path, text)
    assert ":5: <document>: duplicate key 'name'" in problem


def test_every_problem_is_reported_and_nothing_is_half_loaded(tmp_path: Path) -> None:
    second = GOOD.replace("name: good", "name: Bad_Name")
    third = GOOD.replace("name: good", "name: third").replace("kinds: [Service]", "kinds: [Pod]")
    problems = problems_for(tmp_path, GOOD + "---\n" + second + "---\n" + third)
    assert any("metadata.name: 'Bad_Name' is not a valid name" in p for p in problems)
    assert any("spec.match.kinds[0]: unknown kind 'Pod'" in p for p in problems)


def test_a_test_suite_in_a_policy_file_is_explained(tmp_path: Path) -> None:
    suite = "apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: s}\n"
    (problem,) = problems_for(tmp_path, suite)
    assert "test suites must be named *.test.yaml" in problem


def test_folders_skip_test_suites(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(GOOD)
    (tmp_path / "p.test.yaml").write_text("kind: PolicyTest\n")
    assert len(load_policies(tmp_path)) == 1


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no such file or folder"):
        load_policies(tmp_path / "nope")


def test_set_annotations_values_must_be_strings(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  validations:\n    - expression: \"object.spec.type != 'NodePort'\"\n",
        "  mutations:\n    - setAnnotations: {example.com/internal: true}\n",
    )
    (problem,) = problems_for(tmp_path, text)
    assert (
        "spec.mutations[0].setAnnotations.example.com/internal: must be of type string" in problem
    )
